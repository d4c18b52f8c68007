"""A script with both parallelism mistakes that ``launcher check`` warns about (tests/unit/preflight)."""

from concurrent.futures import ThreadPoolExecutor

import torch
from torch import nn


def decode(index):
    return torch.full((4,), float(index)).cuda()  # a helper thread touching CUDA


def main():
    model = nn.DataParallel(nn.Linear(4, 2))  # <- data-parallel
    with ThreadPoolExecutor(4) as pool:
        batch = list(pool.map(decode, range(8)))  # <- thread-cuda
    print(model(torch.stack(batch)).shape)


if __name__ == "__main__":
    main()
