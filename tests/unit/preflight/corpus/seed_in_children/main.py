# Corpus case, written after the code quoted in pytorch/pytorch pull request #1762 (CPU multiprocessing that
# seeds each child with torch.manual_seed, which also queues CUDA seeds): CPU training processes started
# with the default start method; torch.cuda.empty_cache and memory queries for the report (none of them
# initialises CUDA).
import argparse

import torch
import torch.multiprocessing as mp
import torch.nn as nn


def test(rank, args, shared_model):
    torch.manual_seed(args.seed + rank)
    model = nn.Linear(8, 2)
    model.load_state_dict(shared_model.state_dict())
    print(f"test {rank}: {model(torch.randn(4, 8)).sum().item():.3f}")


def train(rank, args, shared_model):
    torch.manual_seed(args.seed + rank)
    optimizer = torch.optim.SGD(shared_model.parameters(), lr=0.01)
    for _ in range(args.steps):
        loss = shared_model(torch.randn(16, 8)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--num-processes", type=int, default=4)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.cuda.empty_cache()
    print(f"cuda memory before: {torch.cuda.memory_allocated()} bytes")
    shared_model = nn.Linear(8, 2)
    shared_model.share_memory()
    processes = [mp.Process(target=test, args=(args.num_processes, args, shared_model))]
    processes += [mp.Process(target=train, args=(rank, args, shared_model)) for rank in range(args.num_processes)]
    for p in processes:
        p.start()
    for p in processes:
        p.join()
