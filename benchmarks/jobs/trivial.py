"""The trivial gloo job: init_process_group, one all_reduce, destroy_process_group.

As a script (torchrun, or the launcher's script entrypoint):
``trivial.py [--hold SECONDS]``. As a function entrypoint: ``trivial.py:work``,
called with the launcher's context, which has already joined the process group.
``--hold`` keeps every rank alive (barrier, then sleep) so its memory can be sampled.
With ``LAUNCHER_TRACE_DIR=DIR`` each rank writes timestamps of its steps there, as the
launcher's own marks do (``launcher/trace.py``): the launch profile reads both.
"""

import os
import sys
import time


def mark(name: str) -> None:
    """``launcher.trace.mark``'s format, without importing the launcher: torchrun runs this script too."""
    where = os.environ.get("LAUNCHER_TRACE_DIR")
    if where:
        with open(os.path.join(where, f"marks-{os.getpid()}.tsv"), "a") as out:
            out.write(f"{time.time()!r}\t{os.environ.get('RANK', '-')}\tjob: {name}\n")


mark("script start")

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

mark("torch imported")


def work(ctx: object = None, hold: float = 0.0) -> None:
    """One all_reduce on a process group that is already initialised; optionally hold."""
    mark("work start")
    tensor = torch.ones(1)
    dist.all_reduce(tensor)
    assert tensor.item() == dist.get_world_size()
    mark("all_reduce done")
    if hold:
        dist.barrier()
        time.sleep(hold)


if __name__ == "__main__":
    hold = float(sys.argv[sys.argv.index("--hold") + 1]) if "--hold" in sys.argv else 0.0
    dist.init_process_group("gloo")
    mark("init_process_group done")
    work(None, hold)
    dist.destroy_process_group()
    mark("destroy done")
