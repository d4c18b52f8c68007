"""Fault injection: rank 1 misbehaves as argv[1] says, rank 0 waits for it in a barrier.

Every rank writes its pid to OUT/ready<rank> (whole, by a rename) once it joined
the group, so a test can act on a running job without sleeping. Children started
here write their pid to OUT/child<rank> (the loops below wait for that file, a
condition, not a delay).
"""
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch.distributed as dist

mode, out = sys.argv[1], Path(sys.argv[2])
rank = int(os.environ["RANK"])


STUBBORN_CHILD = (
    "import os, signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "open(sys.argv[1], 'w').write(str(os.getpid()))\n"
    "time.sleep(3600)\n"
)


def fail_in_rank_one():
    raise RuntimeError("rank one broke down")


def hang_here():
    while True:
        time.sleep(3600)


def train_forever():
    """A training loop: Python code keeps running, so a signal handler runs soon after its signal,
    whichever of the process's threads (gloo's, torch's) the kernel handed the signal to."""
    while True:
        time.sleep(0.05)


def clean_up_then_exit(signum, frame):
    """Like saving a checkpoint on SIGTERM: it takes a while, and must not be cut short."""
    (out / f"term{rank}").write_text("got SIGTERM")
    time.sleep(0.5)
    (out / f"cleaned{rank}").write_text("cleaned up")
    sys.exit(0)


dist.init_process_group("gloo")
if mode == "ignore_sigterm" and rank == 0:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if mode == "clean_up_on_sigterm":
    signal.signal(signal.SIGTERM, clean_up_then_exit)
if mode == "orphan_child":  # like DataLoader workers that would outlive their rank
    child = subprocess.Popen([sys.executable, "-c", STUBBORN_CHILD, str(out / f"child{rank}")])
    while not (out / f"child{rank}").exists():
        time.sleep(0.01)
    dist.barrier()  # both children exist before rank 1 fails
(out / f"ready{rank}.tmp").write_text(str(os.getpid()))
os.replace(out / f"ready{rank}.tmp", out / f"ready{rank}")
print(f"rank {rank} ready", flush=True)
if rank == 1:
    if mode in ("raise", "ignore_sigterm", "orphan_child"):
        fail_in_rank_one()
    if mode == "segfault":
        ctypes.string_at(0)
    if mode == "abort":  # as a failed C assertion, or an allocator giving up, ends a process
        os.abort()
    if mode == "wait":
        hang_here()
if mode == "ignore_sigterm":
    hang_here()  # not in a collective: the failure of rank 1 does not wake it up
if mode == "clean_up_on_sigterm":
    train_forever()
dist.barrier()  # rank 0 waits here for a rank that never comes
