"""A rank that starts a daemon the Unix way (fork, setsid, fork again): the daemon leaves the rank's
process group and session, and its parent exits at once, so it is orphaned.

argv: OUT MODE. Each rank's daemon writes its pid to OUT/daemon<rank>, which the rank waits for (a
condition, not a delay); then MODE ``ok``: every rank returns; ``fail``: rank 1 raises; ``wait``:
every rank writes OUT/ready<rank> and waits for ever.
"""
import os
import sys
import time
from pathlib import Path

out, mode = Path(sys.argv[1]), sys.argv[2]
rank = int(os.environ["RANK"])

DAEMON = (
    "import os, sys, time\n"
    "open(sys.argv[1] + '.tmp', 'w').write(str(os.getpid()))\n"
    "os.rename(sys.argv[1] + '.tmp', sys.argv[1])\n"
    "while True:\n"
    "    time.sleep(3600)\n"
)


def start_daemon(pid_file: Path) -> None:
    child = os.fork()
    if child == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                devnull = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(devnull, fd)
                os.execv(sys.executable, [sys.executable, "-c", DAEMON, str(pid_file)])
        finally:
            os._exit(0)
    os.waitpid(child, 0)  # the daemon's parent is gone: it is an orphan now


start_daemon(out / f"daemon{rank}")
while not (out / f"daemon{rank}").exists():
    time.sleep(0.01)
print(f"rank {rank} started daemon {(out / f'daemon{rank}').read_text()}", flush=True)
if mode == "fail" and rank == 1:
    raise RuntimeError("rank one fails after starting its daemon")
if mode == "wait":
    (out / f"ready{rank}").write_text("ready")
    while True:
        time.sleep(3600)
