"""Rank 1 ends the way argv[1] says; rank 0 waits for it in a barrier. Every rank records atexit."""
import atexit
import os
import signal
import sys
from pathlib import Path

import torch.distributed as dist

mode, marks = sys.argv[1], Path(sys.argv[2])
rank = int(os.environ["RANK"])
atexit.register(lambda: (marks / f"atexit{rank}").write_text("ran"))
dist.init_process_group("gloo")


def fail_here():
    raise ValueError("rank 1 gave up")


if rank == 1:
    if mode == "raise":
        fail_here()
    if mode == "exit3":
        sys.exit(3)
    if mode == "os_exit5":
        os._exit(5)
    if mode == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
if mode == "ok":
    dist.barrier()
    dist.destroy_process_group()
else:
    dist.barrier()  # rank 0 waits here until the launcher stops it
