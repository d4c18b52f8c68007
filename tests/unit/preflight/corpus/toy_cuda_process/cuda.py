# Corpus case, rewritten after alaneuler/python_playground mp/cuda.py: a CUDA tensor made at import,
# then Processes (default start method: fork on Linux) whose target makes CUDA tensors; the
# set_start_method("spawn") that would fix it is commented out.
import torch
from multiprocessing import Process, set_start_method

input = torch.tensor([[1.0]], device="cuda")


def process(i, name):
    print(f"In {name} {i}...")
    input = torch.tensor([[1.0]], device=f"cuda:{i}")
    print(input)


if __name__ == "__main__":
    # set_start_method("spawn")
    processes = [Process(target=process, args=(i, "test")) for i in range(3)]
    for p in processes:
        p.start()
    for p in processes:
        p.join()
