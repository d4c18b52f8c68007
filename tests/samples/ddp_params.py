"""Trains a DDP model a few steps on rank-specific data; writes each rank's final parameters."""
import os
import sys

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(1234 + rank)  # different init and data on every rank: DDP must reconcile them
model = DistributedDataParallel(torch.nn.Linear(8, 4))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for _ in range(3):
    optimizer.zero_grad()
    model(torch.randn(16, 8)).pow(2).mean().backward()
    optimizer.step()
flat = torch.cat([p.detach().flatten() for p in model.parameters()])
torch.save(flat, os.path.join(sys.argv[1], f"params{rank}.pt"))
dist.destroy_process_group()
