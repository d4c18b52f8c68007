"""The reaper: a tiny process (no torch) that makes sure no worker outlives the launcher.

The launcher starts it first and writes each worker's pid to its stdin. When
stdin reaches EOF, because the launcher finished or died (even by SIGKILL), it
kills every worker's process group: the workers and their own children
(DataLoader workers, subprocesses), whatever start method made them. It
ignores SIGINT and SIGTERM, which are the launcher's to handle.

Run as ``python -m launcher.reaper``; ``Reaper`` is the launcher's handle.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

KILL = getattr(signal, "SIGKILL", signal.SIGTERM)  # Windows has no SIGKILL


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal a worker's process group (it leads one), or the worker alone where groups do not exist."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if hasattr(os, "killpg"):
            try:
                os.killpg(pid, sig)
                return
            except ProcessLookupError:
                pass  # the group is gone (or not formed yet): the process itself may remain
        os.kill(pid, sig)


def main() -> None:
    for name in ("SIGINT", "SIGTERM"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    pids = {int(line) for line in sys.stdin.buffer if line.strip().isdigit()}  # until EOF
    for pid in pids:
        signal_group(pid, KILL)


class Reaper:
    """The launcher's side: start the reaper, tell it about workers, let it finish."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "launcher.reaper"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
        )

    def watch(self, pids: list[int]) -> None:
        assert self._process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self._process.stdin.write("".join(f"{pid}\n" for pid in pids).encode())
            self._process.stdin.flush()

    def close(self) -> None:
        """EOF: the reaper kills whatever is left of the worker groups and exits."""
        assert self._process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self._process.stdin.close()
        self._process.wait(timeout=10)


if __name__ == "__main__":
    main()
