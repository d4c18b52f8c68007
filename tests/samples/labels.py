"""Failures whose labels the summary must get right; argv[1] says which, argv[2] is a folder for markers.

- ``both_raise``: every rank raises its own exception at the same moment (after a barrier), and none exits
  before every rank's error file is written: each failed on its own, none was stopped by the launcher.
- ``exit_message``: rank 1 calls ``sys.exit(message)``; the others wait in a barrier.
- ``stuck N``: rank N spins in its own loop; the others wait for it in a barrier.
- ``dies_when_stopped``: rank 1 raises; rank 0 answers the launcher's SIGTERM with a SIGKILL of its own, as a
  rank killed from elsewhere that the launcher finds still running when it begins to stop the job.
"""
import atexit
import os
import signal
import sys
import time
from pathlib import Path

import torch.distributed as dist

mode, out = sys.argv[1], Path(sys.argv[2])
rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
world = int(os.environ["LOCAL_WORLD_SIZE"])


def wait_for_every_error_file():
    """Runs after the launcher's bootstrap wrote this rank's error file: hold the exit until all are written."""
    folders = Path(os.environ["TORCHELASTIC_ERROR_FILE"]).parent.parent
    while not all((folders / str(other) / "error.json").exists() for other in range(world)):
        time.sleep(0.005)


def spin():
    while True:  # the user's own loop, never reaching the collective below
        sum(range(1000))


dist.init_process_group("gloo")
(out / f"ready{rank}").write_text("ready")
if mode == "both_raise":
    atexit.register(wait_for_every_error_file)
    dist.barrier()
    raise RuntimeError(f"rank {rank} broke down")
if mode == "dies_when_stopped":
    if rank == 0:
        signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGKILL))
    dist.barrier()  # rank 0's handler is in place
    if rank == 1:
        raise RuntimeError("rank 1 broke down")
    while True:  # Python code keeps running: the handler runs as soon as the signal comes
        time.sleep(0.05)
if mode == "exit_message" and rank == 1:
    sys.exit("rank 1 found no data in /nowhere")
if mode == "stuck" and rank == int(sys.argv[3]):
    spin()
dist.barrier()  # the others wait here for a rank that never comes
