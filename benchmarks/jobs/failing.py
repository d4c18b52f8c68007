"""A two-rank gloo job in which rank 1 fails on purpose: ``failing.py MODE DIR``.

MODE: ``raise``, ``exit`` (``os._exit(3)``), ``sigkill`` (kills itself), and
``raise-term-ignored`` (rank 0 ignores SIGTERM, then sleeps: a gloo barrier would
raise on its own once the peer is gone) while rank 0 waits in a barrier;
``hold``: every rank writes ``DIR/ready-<rank>`` with its pid, then sleeps.
Just before failing, rank 1 writes ``time.time()`` to ``DIR/failed-at``.
"""

import os
import signal
import sys
import time

import torch.distributed as dist

MESSAGE = "rank 1 fails on purpose"


def fail_on_purpose(mode: str, where: str) -> None:
    with open(os.path.join(where, "failed-at"), "w") as out:
        out.write(repr(time.time()))
    if mode == "exit":
        os._exit(3)
    if mode == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise RuntimeError(MESSAGE)


def main(mode: str, where: str) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    if mode == "hold":
        with open(os.path.join(where, f"ready-{rank}"), "w") as out:
            out.write(str(os.getpid()))
        time.sleep(120)  # bounded, so that nothing lives forever if the benchmark itself dies
        return
    if rank == 1:
        time.sleep(0.3)  # rank 0 is in its barrier (or sleep) by now
        fail_on_purpose(mode, where)
    elif mode == "raise-term-ignored":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(120)
    else:
        dist.barrier()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
