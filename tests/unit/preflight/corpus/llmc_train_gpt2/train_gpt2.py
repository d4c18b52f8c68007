# Corpus case, rewritten after karpathy/llm.c train_gpt2.py: torchrun-style DDP from the environment, a
# hand-written data loader class over token shards, no worker processes; everything under the guard.
import argparse
import os

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP


class DistributedDataLoader:
    def __init__(self, filename, B, T, process_rank, num_processes):
        self.B, self.T = B, T
        self.process_rank = process_rank
        self.num_processes = num_processes
        self.tokens = torch.tensor(np.memmap(filename, dtype=np.uint16, mode="r").astype(np.int64))
        self.current_position = B * T * process_rank

    def next_batch(self):
        B, T = self.B, self.T
        buf = self.tokens[self.current_position:self.current_position + B * T + 1]
        x, y = buf[:-1].view(B, T), buf[1:].view(B, T)
        self.current_position += B * T * self.num_processes
        if self.current_position + (B * T * self.num_processes + 1) > len(self.tokens):
            self.current_position = B * T * self.process_rank
        return x, y


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--input_bin", type=str, default="dev/data/tinyshakespeare/tiny_shakespeare_val.bin")
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--sequence_length", type=int, default=64)
    parser.add_argument("--num_iterations", type=int, default=10)
    parser.add_argument("--device", type=str, default="")
    args = parser.parse_args()
    ddp = int(os.environ.get("RANK", -1)) != -1
    if ddp:
        dist.init_process_group(backend="nccl")
        ddp_rank = int(os.environ["RANK"])
        ddp_local_rank = int(os.environ["LOCAL_RANK"])
        ddp_world_size = int(os.environ["WORLD_SIZE"])
        device = f"cuda:{ddp_local_rank}"
        torch.cuda.set_device(device)
    else:
        ddp_rank, ddp_local_rank, ddp_world_size = 0, 0, 1
        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(42)
    if torch.cuda.is_available():
        torch.cuda.manual_seed(42)
    train_loader = DistributedDataLoader(args.input_bin, args.batch_size, args.sequence_length, ddp_rank, ddp_world_size)
    model = nn.Sequential(nn.Embedding(50257, 64), nn.Linear(64, 50257)).to(device)
    if ddp:
        model = DDP(model, device_ids=[ddp_local_rank])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for step in range(args.num_iterations):
        x, y = train_loader.next_batch()
        x, y = x.to(device), y.to(device)
        loss = nn.functional.cross_entropy(model(x).view(-1, 50257), y.view(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if ddp:
        dist.destroy_process_group()
