"""Training that must resume as if it never stopped: dropout, shuffled data read by 2 DataLoader workers,
python and numpy draws in the loss, Adam and a StepLR schedule, checkpoints every few steps.

``main(ctx, steps, kill_at, kill_rank)``: in the first attempt, rank ``kill_rank`` SIGKILLs itself at the
first step >= ``kill_at`` at which a complete checkpoint exists; the launcher restarts the workers
(``--max-restarts``) and they resume from the latest checkpoint. Every step prints its loss exactly
(``float.hex``) with the attempt, and rank 0 ends with a digest of the final parameters.

``fixed_buckets``: DDP with ``find_unused_parameters=True``, which never rebuilds its gradient buckets. By
default DDP rebuilds them once, after its first iteration; a resumed run's first iteration is then another
step than the uninterrupted run's, each gradient sits elsewhere in the bucket, and with more than 2 ranks gloo
sums it in another order: the last bits differ (2 ranks: a + b == b + a). With it, 4 ranks resume bitwise.

``hold_at``: in a SLURM job's first run (``SLURM_RESTART_COUNT`` unset or 0), every rank stops training at that
step, prints ``holding at step N`` and calls ``maybe_save`` there until the launcher's save-and-stop request
(a preemption) makes it save and stop: a test preempts the job at a known step, and a requeued run goes on.
"""

import hashlib
import os
import random
import signal
import time

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import TensorDataset

from launcher.runtime.checkpoint.layout import CheckpointDir


def data() -> TensorDataset:
    generator = torch.Generator().manual_seed(7)
    inputs = torch.randn(48, 8, generator=generator)
    return TensorDataset(inputs, inputs.sum(dim=1, keepdim=True))


def main(ctx, steps: int, kill_at: int = -1, kill_rank: int = 0, hold_at: int = -1,  # type: ignore[no-untyped-def]
         fixed_buckets: bool = False) -> None:
    attempt = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    model = DistributedDataParallel(nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 1)),
                                    find_unused_parameters=fixed_buckets)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=5, gamma=0.5)
    loader = ctx.dataloader(data())
    ckpt = ctx.checkpointer()
    restored = ckpt.restore(model=model, optimizer=optimizer, scheduler=scheduler)
    step = restored.step if restored is not None else 0
    print(f"attempt {attempt} starts at step {step}", flush=True)
    for _ in ctx.epochs(100):
        for inputs, targets in loader:
            if step == steps:
                break
            optimizer.zero_grad()
            noise = random.random() * 1e-3 + float(np.random.rand()) * 1e-3
            loss = nn.functional.mse_loss(model(inputs), targets) + noise
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            print(f"attempt {attempt} step {step} loss {loss.item().hex()}", flush=True)
            if attempt == 0 and ctx.rank == kill_rank and 0 <= kill_at <= step:
                if CheckpointDir(ctx.config.checkpoint.dir).latest_step() is not None:
                    os.kill(os.getpid(), signal.SIGKILL)
            ckpt.maybe_save(step, model=model, optimizer=optimizer, scheduler=scheduler)
            if step == hold_at and os.environ.get("SLURM_RESTART_COUNT", "0") == "0":
                print(f"holding at step {step}", flush=True)
                while True:  # maybe_save raises StopAfterCheckpoint once it saved on the launcher's request
                    time.sleep(0.01)
                    ckpt.maybe_save(step, model=model, optimizer=optimizer, scheduler=scheduler)
        if step == steps:
            break
    if ctx.rank == 0:
        weights = b"".join(p.detach().numpy().tobytes() for p in model.module.parameters())
        print(f"final {hashlib.sha256(weights).hexdigest()}", flush=True)
