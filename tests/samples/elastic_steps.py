"""Training whose result does not depend on the number of ranks, for jobs that lose a node and re-form.

``main(ctx, steps, holds, marker)``: a float64 vector trained by SGD with momentum towards a target
that depends on the step alone (``target``). Every rank computes the same gradient, so DDP's average
is that gradient whatever the world size, and the final parameters are ``expected(steps)`` up to
rounding, on any number of ranks, resumed or not (the momentum buffer must come back from the
checkpoint for that). A synchronous checkpoint every step.

In the first attempt (restarts counted: a re-form to admit a node is none), in a world of N ranks
with ``holds[N] = S``, once the checkpoint of step S is complete, rank 0 writes ``<marker>-<N>``
(atomically) and the job holds there until the rendezvous changes (a node lost, or one waiting to
join) and the job re-forms. Every rank then waits outside torch: only the launcher can tell that
a node left (the rendezvous's keep-alive) or that one waits to join. Each attempt prints its world size and
the step it starts at; rank 0 ends with the final parameters (``final [...]``, Python reprs).
"""

import math
import os
import threading

import torch
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


def hold(ctx, marker: str) -> None:  # type: ignore[no-untyped-def]
    """Say where the job is, then wait until the job re-forms."""
    if ctx.rank == 0:
        path = f"{marker}-{ctx.world_size}"
        with open(path + ".tmp", "w") as handle:
            handle.write(f"{ctx.world_size}\n")
        os.replace(path + ".tmp", path)
    threading.Event().wait()


def main(ctx, steps: int, holds: dict[int, int], marker: str) -> None:  # type: ignore[no-untyped-def]
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
        if attempt == 0 and holds.get(ctx.world_size) == step:
            hold(ctx, marker)
    if ctx.rank == 0:
        print(f"final {[float(w) for w in model.module.weights.detach()]}", flush=True)
