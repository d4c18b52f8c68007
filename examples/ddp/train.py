"""Data parallel training on one machine: one process per device, a DDP replica of the model in each.

Run ``python -m launcher examples/ddp/train.yaml`` (README.md). Each rank reads
its own shard of the data (``ctx.dataloader``), computes gradients on it, and
DDP averages them across ranks during ``backward``, so every replica takes the
same optimizer step. Mixed precision comes from the job's ``amp:`` section
through ``ctx.autocast()`` and ``ctx.grad_scaler()``: the loop is the same with
AMP on or off, on CPUs or GPUs.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import TensorDataset


def regression(samples: int = 4096, features: int = 32, seed: int = 0) -> TensorDataset:
    """A noisy nonlinear target of random inputs: learnable in a few dozen steps."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(samples, features, generator=generator)
    weights = torch.randn(features, 1, generator=generator) / features**0.5
    targets = torch.tanh(inputs @ weights) + 0.05 * torch.randn(samples, 1, generator=generator)
    return TensorDataset(inputs, targets)


def replicas_agree(model: nn.Module) -> bool:
    """Whether every rank holds exactly rank 0's parameters (what DDP guarantees after each step)."""
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    reference = flat.clone()
    dist.broadcast(reference, src=0)
    same = torch.tensor([int(torch.equal(flat, reference))], device=flat.device)
    dist.all_reduce(same, op=dist.ReduceOp.MIN)
    return bool(same.item())


def main(ctx, epochs: int = 2, lr: float = 0.05, hidden: int = 128) -> float:  # type: ignore[no-untyped-def]
    loader = ctx.dataloader(regression(seed=ctx.seed or 0))  # this rank's shard, batch_size from data:
    model = nn.Sequential(nn.Linear(32, hidden), nn.ReLU(), nn.Linear(hidden, 1)).to(ctx.device)
    model = DistributedDataParallel(model)  # on GPUs the launcher's ctx.device is this rank's own GPU
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    scaler = ctx.grad_scaler()  # a GradScaler for float16 on CUDA, a no-op otherwise
    amp = f"AMP {str(ctx.amp.dtype).removeprefix('torch.')}" if ctx.amp.dtype is not None else "no AMP"
    ctx.print(f"{ctx.world_size} processes, backend {ctx.backend}, {amp}, global batch "
              f"{ctx.world_size * ctx.config.data.batch_size}")
    step, first, loss = 0, None, torch.zeros(())
    for _epoch in ctx.epochs(epochs):  # sets each epoch's shuffle on the loader
        for inputs, targets in loader:
            inputs, targets = inputs.to(ctx.device), targets.to(ctx.device)
            optimizer.zero_grad()
            with ctx.autocast():
                outputs = model(inputs)
            loss = nn.functional.mse_loss(outputs.float(), targets)
            scaler.scale(loss).backward()  # DDP all-reduces the gradients here
            scaler.step(optimizer)
            scaler.update()
            ctx.step()
            step += 1
            first = loss.item() if first is None else first
    dist.all_reduce(loss := loss.detach().clone())
    mean_loss = loss.item() / ctx.world_size
    ctx.print(f"step {step}: loss {first:.4f} -> {mean_loss:.4f}, replicas identical: {replicas_agree(model)}")
    return mean_loss
