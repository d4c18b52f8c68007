"""Training whose result does not depend on the number of ranks, for jobs that lose a node and re-form.

``main(ctx, steps, hold_at, marker)``: a float64 vector trained by SGD with momentum towards a target
that depends on the step alone (``target``). Every rank computes the same gradient, so DDP's average
is that gradient whatever the world size, and the final parameters are ``expected(steps)`` up to
rounding, on any number of ranks, resumed or not (the momentum buffer must come back from the
checkpoint for that). A synchronous checkpoint every step.

In the first attempt, once the checkpoint of step ``hold_at`` is complete in a world of
``hold_world`` ranks, rank 0 writes ``marker`` (atomically) and the job holds there until a node is
lost and the job re-forms. ``hold_in="recv"``: the last rank waits for ever and every other rank
waits to receive from it (gloo fails their receive when the last rank's process is gone);
``hold_in="sleep"``: every rank waits for ever outside torch, so only the launcher can tell that a
node left (the rendezvous's keep-alive). Each attempt prints its world size and
the step it starts at; rank 0 ends with the final parameters (``final [...]``, Python reprs).
"""

import math
import os
import threading

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

SIZE, LR, MOMENTUM = 4, 0.1, 0.9
START = (0.5, -0.25, 1.0, 2.0)


def target(step: int) -> list[float]:
    return [math.sin(step + i) for i in range(SIZE)]


def expected(steps: int) -> list[float]:
    """The parameters after ``steps`` steps, computed here in plain Python (torch's SGD with momentum)."""
    weights, buffer = list(START), [0.0] * SIZE
    for step in range(1, steps + 1):
        grad = [w - t for w, t in zip(weights, target(step), strict=True)]
        buffer = grad if step == 1 else [MOMENTUM * b + g for b, g in zip(buffer, grad, strict=True)]
        weights = [w - LR * b for w, b in zip(weights, buffer, strict=True)]
    return weights


class Vector(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.tensor(START, dtype=torch.float64))

    def forward(self, goal: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((self.weights - goal) ** 2).sum()


def hold(ctx, marker: str, hold_in: str) -> None:  # type: ignore[no-untyped-def]
    """Say where the job is, then wait until a node is lost."""
    if ctx.rank == 0:
        with open(marker + ".tmp", "w") as handle:
            handle.write(f"{ctx.world_size}\n")
        os.replace(marker + ".tmp", marker)
    last = ctx.world_size - 1
    if ctx.rank == last or hold_in == "sleep":
        threading.Event().wait()
    dist.recv(torch.zeros(1), src=last)
    raise RuntimeError("the last rank sent something: it never should")


def main(ctx, steps: int, hold_at: int, hold_world: int, marker: str,  # type: ignore[no-untyped-def]
         hold_in: str = "recv") -> None:
    attempt = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    model = DistributedDataParallel(Vector())
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    ckpt = ctx.checkpointer()
    restored = ckpt.restore(model=model, optimizer=optimizer)
    step = restored.step if restored is not None else 0
    print(f"attempt {attempt} world {ctx.world_size} starts at step {step}", flush=True)
    while step < steps:
        step += 1
        optimizer.zero_grad()
        model(torch.tensor(target(step), dtype=torch.float64)).backward()
        optimizer.step()
        ckpt.maybe_save(step, model=model, optimizer=optimizer)
        if attempt == 0 and step == hold_at and ctx.world_size == hold_world:
            hold(ctx, marker, hold_in)
    if ctx.rank == 0:
        print(f"final {[float(w) for w in model.module.weights.detach()]}", flush=True)
