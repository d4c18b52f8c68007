"""A CPU training loop that reports to the monitor: a 3-layer MLP under DDP (gloo), ctx.step() and ctx.log() at
every step, as a monitored job does.

``monitored_loop.py STEPS``: trains STEPS steps after 20 warm-up steps; each rank prints
``LOOP <rank> <steps per second>`` over the measured steps (wall clock of its training thread).
"""

import sys
import time

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

import launcher

WARMUP = 20
steps = int(sys.argv[1])
ctx = launcher.init()
torch.manual_seed(0)
model = DistributedDataParallel(torch.nn.Sequential(
    torch.nn.Linear(256, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512), torch.nn.ReLU(), torch.nn.Linear(512, 1)))
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
x, y = torch.randn(64, 256), torch.randn(64, 1)
for step in range(WARMUP + steps):
    if step == WARMUP:
        started = time.perf_counter()
    loss = F.mse_loss(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    ctx.step(samples=64)
    ctx.log(loss=loss, lr=0.01)
print(f"LOOP {ctx.rank} {steps / (time.perf_counter() - started):.3f}", flush=True)
