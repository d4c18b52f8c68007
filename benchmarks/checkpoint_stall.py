"""Checkpoint stall: how long a save holds the training loop with async checkpoints, against a synchronous torch.save.

One process (a world of one: ``launcher.init()`` under plain python) trains an
MLP of three 2048x2048 layers with Adam on the CPU: 12.6 M parameters, about
150 MB of model and optimizer state. Each round, interleaved with the anchor:

- ours: ``ckpt.save(step, model=..., optimizer=...)`` with ``async: true``:
  the time the call holds the training thread (the snapshot of everything but
  the parameters and Adam's state, handed to the writer thread), plus the time
  the next optimizer step waits for the writer to copy those (it copies them
  while that step's forward and backward run); then ``--steps`` training steps
  while the writer serialises and writes (timed against as many steps just
  before the save: what the write costs the loop besides the holds); then the
  writer is waited for (fsync, rename, ``complete.json``), outside the timed
  part;
- anchor: ``torch.save({"model": ..., "optimizer": ...}, path)`` of the same
  state in the training thread, as a loop that saves synchronously does (no
  fsync: what most loops do); and the same followed by ``fsync`` (what a save
  that must survive a power cut costs).

The first save, which allocates the snapshot buffers, is the warm-up round and
is reported apart. Target: ours blocked at most 10% of the
synchronous save (PyTorch's distributed checkpoint reports about 4%).

    python -m benchmarks.checkpoint_stall [--runs N] [--quick] [--json PATH] [--dir FOLDER]
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from benchmarks.common import (
    RESULTS_DIR,
    Variant,
    finish,
    interleave,
    markdown_table,
    parser,
    prepare,
    summary,
    verdict,
)

NAME = "checkpoint_stall"
TARGET = 0.10
WIDTH, LAYERS, BATCH = 2048, 3, 64
MB = 1e6


class Training:
    """The model, its optimizer and a batch; ``step()`` is one training step."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.model = nn.Sequential(*(nn.Linear(WIDTH, WIDTH) for _ in range(LAYERS)))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-4)
        self.inputs = torch.randn(BATCH, WIDTH)
        self.step_count = 0
        self.step()  # Adam's state exists from the first step on

    def step(self) -> None:
        self.optimizer.zero_grad()
        self.model(self.inputs).square().mean().backward()
        self.optimizer.step()
        self.step_count += 1

    def timed_steps(self, count: int) -> float:
        started = time.perf_counter()
        for _ in range(count):
            self.step()
        return time.perf_counter() - started

    def state_bytes(self) -> int:
        tensors = list(self.model.state_dict().values())
        tensors += [t for s in self.optimizer.state_dict()["state"].values() for t in s.values()
                    if isinstance(t, torch.Tensor)]
        return sum(t.numel() * t.element_size() for t in tensors)


def measure(runs: int, steps: int, folder: str) -> dict[str, Any]:
    import launcher

    ctx = launcher.init()
    run = Training()
    ckpt = ctx.checkpointer(dir=os.path.join(folder, "ours"), keep=1, async_=True, resume="never")
    anchor_path = os.path.join(folder, "anchor.pt")

    def ours() -> dict[str, float]:
        before = run.timed_steps(steps)
        started = time.perf_counter()
        ckpt.save(run.step_count, model=run.model, optimizer=run.optimizer)
        in_save = time.perf_counter() - started
        during = run.timed_steps(steps)
        assert ckpt.last_timing is not None
        at_step = ckpt.last_timing.held_at_step
        waited = time.perf_counter()
        ckpt.wait()
        return {"blocked": in_save + at_step, "in_save": in_save, "held_at_step": at_step, "steps_before": before,
                "steps_during": during - at_step, "write_left_after_steps": time.perf_counter() - waited}

    def anchor(fsync: bool) -> float:
        run.timed_steps(steps)
        started = time.perf_counter()
        with open(anchor_path, "wb") as handle:
            torch.save({"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict()}, handle)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        blocked = time.perf_counter() - started
        os.unlink(anchor_path)
        return blocked

    first = ours()  # allocates the snapshot buffers: reported apart
    kept = interleave([Variant("ours", ours, runs, warmup=0),
                       Variant("torch.save", lambda: anchor(False), runs),
                       Variant("torch.save + fsync", lambda: anchor(True), runs)], progress=NAME)
    ckpt.close()
    ctx.close()
    return {"state_mb": run.state_bytes() / MB, "steps_per_window": steps, "first_save": first,
            "ours": kept["ours"], "torch_save": kept["torch.save"], "torch_save_fsync": kept["torch.save + fsync"]}


def render(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    blocked = [r["blocked"] for r in data["ours"]]
    slowdown = [r["steps_during"] - r["steps_before"] for r in data["ours"]]
    sync, sync_fsync = statistics.median(data["torch_save"]), statistics.median(data["torch_save_fsync"])
    ratio = statistics.median(blocked) / sync
    figures = {"blocked": summary(blocked), "in_save": summary([r["in_save"] for r in data["ours"]]),
               "held_at_step": summary([r["held_at_step"] for r in data["ours"]]),
               "steps_slower_during_write": summary(slowdown),
               "torch_save": summary(data["torch_save"]), "torch_save_fsync": summary(data["torch_save_fsync"]),
               "ratio_blocked_to_torch_save": ratio, "target": TARGET, "met": ratio <= TARGET}
    first = data["first_save"]["blocked"]
    step_ms = statistics.median(r["steps_before"] for r in data["ours"]) / data["steps_per_window"] * 1000
    in_save = statistics.median(r["in_save"] for r in data["ours"])
    at_step = statistics.median(r["held_at_step"] for r in data["ours"])
    rows = [
        ["async save (ours): training thread held, in all", statistics.median(blocked), f"{ratio:.1%}"],
        ["  in save()", in_save, f"{in_save / sync:.1%}"],
        ["  at the next optimizer step, until the copy is done", at_step, f"{at_step / sync:.1%}"],
        [f"  besides: the {data['steps_per_window']} steps during the write were slower by",
         statistics.median(slowdown), f"{statistics.median(slowdown) / sync:.1%}"],
        ["  first save (allocates the buffers)", first, f"{first / sync:.1%}"],
        ["torch.save in the loop (anchor)", sync, "100%"],
        ["torch.save + fsync in the loop", sync_fsync, f"{sync_fsync / sync:.0%}"],
    ]
    text = (f"## Checkpoint stall: {data['state_mb']:.0f} MB of model + Adam state, CPU, "
            f"{len(blocked)} saves each (medians; one training step {step_ms:.0f} ms)\n\n"
            + markdown_table(["what holds the training loop", "seconds", "of torch.save"], rows)
            + f"\n\nTarget: async blocked time <= {TARGET:.0%} of the synchronous save: {ratio:.1%}, "
            f"{verdict(ratio <= TARGET)}.")
    return text, figures


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    options = parser(__doc__.splitlines()[0])
    options.add_argument("--steps", type=int, default=5, help="training steps timed before and during each write")
    options.add_argument("--dir", help="where to write the checkpoints (default: a temporary folder under "
                                       "benchmarks/results, on the disk the results go to)")
    args = options.parse_args(argv)
    runs = prepare(args)
    os.makedirs(args.dir or RESULTS_DIR, exist_ok=True)
    folder = tempfile.mkdtemp(prefix="checkpoint-stall-", dir=args.dir or RESULTS_DIR)
    try:
        data = measure(runs, args.steps, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    text, figures = render(data)
    print(text)
    return finish(NAME, {**data, "figures": figures}, args, argv)


if __name__ == "__main__":
    sys.exit(main())
