"""A small training loop that reports to the monitor: ctx.step(), ctx.log(loss=...), a context loader over epochs.

``--work S``: seconds of extra work per step on every rank, ``--slow-factor`` times as long on ``--slow-rank``
(a straggler). ``--say-every N``: rank 0 prints ``worker line at step N of rank 0`` every N steps.
``--count``: each rank prints ``steps <rank> <count>`` at the end, the count the monitor must have recorded.
"""
import argparse
import time

import torch

import launcher

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=2)
parser.add_argument("--work", type=float, default=0.0)
parser.add_argument("--slow-rank", type=int, default=None)
parser.add_argument("--slow-factor", type=float, default=2.0)
parser.add_argument("--say-every", type=int, default=0)
parser.add_argument("--count", action="store_true")
options = parser.parse_args()

ctx = launcher.init()
data = torch.utils.data.TensorDataset(torch.randn(256, 8), torch.randn(256, 1))
loader = ctx.dataloader(data, batch_size=16, num_workers=0)
model = torch.nn.Linear(8, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
steps = 0
for epoch in ctx.epochs(options.epochs):
    for x, y in loader:
        loss = torch.nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        time.sleep(options.work * (options.slow_factor if ctx.rank == options.slow_rank else 1))  # a heavier step
        steps += 1
        ctx.step()
        ctx.log(loss=loss, lr=0.05)
        if ctx.rank == 0 and options.say_every and steps % options.say_every == 0:
            print(f"worker line at step {steps} of rank 0", flush=True)
if options.count:
    print(f"steps {ctx.rank} {steps}", flush=True)
