"""Monitor A/B inside one job: blocks of the same DDP loop with the monitor thread off, every 1 s and every 0.1 s.

Launched with ``--set monitor.enabled=false`` (so the bootstrap starts no monitor of its own), each rank
runs ``ROUNDS`` rounds; a round runs one block of ``STEPS`` steps per mode, the modes in a rotating order.
For an "on" block the rank starts a ``launcher.runtime.monitor.Monitor`` over the context's counters (as
the bootstrap does), writing to ``OUT/rank_<R>-<mode>.jsonl``, and stops it after the block. Every
block calls ``ctx.step()`` and ``ctx.log()`` at every step, as a monitored loop does: the difference
between modes is the monitor thread alone. Each rank prints ``AB <rank> <mode> <steps per second>``
per block, and ``RECORD <rank> <seconds>``: the median time one record takes to write.

    monitor_ab.py OUT ROUNDS STEPS
"""

import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

import launcher
from launcher.runtime.meters import METERS
from launcher.runtime.monitor import Identity, Monitor

out, rounds, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
MODES = {"off": None, "1 s": 1.0, "0.1 s": 0.1}
ctx = launcher.init()
torch.manual_seed(0)
model = DistributedDataParallel(torch.nn.Sequential(
    torch.nn.Linear(256, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512), torch.nn.ReLU(), torch.nn.Linear(512, 1)))
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
x, y = torch.randn(64, 256), torch.randn(64, 1)


def block(count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        loss = F.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ctx.step(samples=64)
        ctx.log(loss=loss, lr=0.01)
    return count / (time.perf_counter() - started)


block(30)  # warm-up
names = list(MODES)
for number in range(rounds):
    order = names[number % len(names):] + names[:number % len(names)]
    for mode in order:
        interval = MODES[mode]
        monitor = None
        if interval is not None:
            path = os.path.join(out, f"rank_{ctx.rank}-{mode.replace(' ', '')}.jsonl")
            monitor = Monitor(path, interval, Identity(ctx.rank, ctx.local_rank, 0, 0), METERS).start()
        rate = block(steps)
        if monitor is not None:
            monitor.stop()
        print(f"AB {ctx.rank} {mode} {rate:.3f}", flush=True)

probe = Monitor(os.path.join(out, f"probe_{ctx.rank}.jsonl"), 3600, Identity(ctx.rank, 0, 0, 0), METERS).start()
costs = []
for _ in range(200):
    started = time.perf_counter()
    probe._write(final=False)  # what the thread does once per interval
    costs.append(time.perf_counter() - started)
probe.stop()
print(f"RECORD {ctx.rank} {statistics.median(costs):.6f}", flush=True)
