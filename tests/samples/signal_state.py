"""Each rank writes OUT/signals<rank>.json: its pid, signal handlers and blocked signals as Python sees them.

With ``wait`` as argv[2], rank 1 then runs a loop in user code until a SIGINT raises KeyboardInterrupt in it
(it writes OUT/interrupted first); rank 0 ends at once.
"""
import json
import os
import signal
import sys
import time
from pathlib import Path

out = Path(sys.argv[1])
rank = int(os.environ.get("RANK", "0"))
NAMES = ("SIGINT", "SIGHUP", "SIGTERM", "SIGQUIT", "SIGPIPE", "SIGXFSZ", "SIGCHLD", "SIGUSR2")


def described(handler):
    if handler is signal.default_int_handler:
        return "default_int_handler"
    if isinstance(handler, signal.Handlers):
        return handler.name
    return "None" if handler is None else "a Python handler"


state = {"pid": os.getpid(), "handlers": {name: described(signal.getsignal(getattr(signal, name))) for name in NAMES},
         "blocked": sorted(signal.Signals(number).name for number in signal.pthread_sigmask(signal.SIG_BLOCK, []))}
(out / f"signals{rank}.partial").write_text(json.dumps(state))
os.replace(out / f"signals{rank}.partial", out / f"signals{rank}.json")
if rank == 1 and sys.argv[2:] == ["wait"]:
    try:
        while True:
            time.sleep(0.01)
    except KeyboardInterrupt:
        (out / "interrupted").write_text("KeyboardInterrupt")
        raise
