"""A small real training job: an MLP learns a synthetic 3-class spiral, with DDP over all ranks.

Run it with ``python -m launcher --nprocs 4 examples/train.yaml``. The job file
names ``train.py:main``, which the launcher calls as ``main(ctx, *args, **kwargs)``
on every rank: ``ctx`` knows the rank, the device and the job's settings, ``kwargs``
come from the job's ``kwargs:``, and ``args`` from what follows ``--`` on the command
line (``-- --epochs 5``), parsed here like a script's options. Its
``checkpoint:`` section saves every 50 steps; killed and run again (or restarted
by ``--max-restarts``), the job goes on from its latest checkpoint exactly as if
it had never stopped.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import TensorDataset


def spirals(samples_per_class: int = 400, classes: int = 3, seed: int = 0) -> TensorDataset:
    """Interleaved noisy spirals: not linearly separable, learnable in a few epochs."""
    generator = torch.Generator().manual_seed(seed)
    points, labels = [], []
    for label in range(classes):
        radius = torch.linspace(0.05, 1.0, samples_per_class)
        angle = torch.linspace(0, 4, samples_per_class) + label * 2 * math.pi / classes
        angle = angle + 0.2 * torch.randn(samples_per_class, generator=generator)
        points.append(torch.stack([radius * torch.sin(angle * 2), radius * torch.cos(angle * 2)], dim=1))
        labels.append(torch.full((samples_per_class,), label))
    return TensorDataset(torch.cat(points), torch.cat(labels))


def options(argv: tuple[str, ...], **defaults: Any) -> argparse.Namespace:
    """``--epochs 5`` and the like, written after ``--`` on the command line, over the job's kwargs."""
    parser = argparse.ArgumentParser(prog="examples/train.py:main", description="Options after -- override kwargs:.")
    for name, default in defaults.items():
        parser.add_argument(f"--{name}", type=type(default), default=default)
    return parser.parse_args(argv)


def main(ctx, *argv: str, epochs: int = 20, lr: float = 0.01, hidden: int = 64) -> float:  # type: ignore[no-untyped-def]
    opts = options(argv, epochs=epochs, lr=lr, hidden=hidden)
    epochs, lr, hidden = opts.epochs, opts.lr, opts.hidden
    dataset = spirals(seed=ctx.seed or 0)
    loader = ctx.dataloader(dataset)  # this rank's shard (DistributedSampler), batch_size from data:
    model = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 3))
    model = DistributedDataParallel(model.to(ctx.device))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    ckpt = ctx.checkpointer()  # settings from checkpoint: in train.yaml
    restored = ckpt.restore(model=model, optimizer=optimizer)  # the latest checkpoint, with the loaders' positions
    step = restored.step if restored is not None else 0
    ctx.print(f"training on {ctx.world_size} process(es), backend {ctx.backend}, {len(dataset)} samples"
              + (f", from step {step}" if restored is not None else ""))
    mean_loss = float("nan")
    for epoch in ctx.epochs(epochs):  # sets the epoch on every loader: a new shuffle each epoch
        totals = torch.zeros(3, device=ctx.device)  # loss sum, correct, count
        for inputs, targets in loader:
            inputs, targets = inputs.to(ctx.device), targets.to(ctx.device)
            optimizer.zero_grad()
            logits = model(inputs)
            loss = loss_fn(logits, targets)
            loss.backward()
            optimizer.step()
            ctx.step()  # progress, for the hang watchdog
            step += 1
            ckpt.maybe_save(step, model=model, optimizer=optimizer)  # written in the background when due
            totals += torch.stack([loss.detach() * len(targets), (logits.argmax(1) == targets).sum(),
                                   torch.tensor(len(targets), device=ctx.device)])
        dist.all_reduce(totals)
        mean_loss = (totals[0] / totals[2]).item()
        if epoch % 5 == 4 or epoch == epochs - 1:
            ctx.print(f"epoch {epoch + 1:3d}/{epochs}  loss {mean_loss:.4f}  accuracy {totals[1] / totals[2]:.3f}")
    if restored is not None and step == restored.step:
        ctx.print("nothing left to train (--set checkpoint.resume=never starts over)")
    return mean_loss
