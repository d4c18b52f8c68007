"""The reaper: a tiny process (no torch) that makes sure no worker outlives the launcher.

The launcher starts it first and writes to its stdin each worker's pid, and the
temporary folders it made. When stdin reaches EOF, because the launcher
finished or died (even by SIGKILL), it kills every worker's process group (the
workers and their own children: DataLoader workers, subprocesses), whatever
start method made them, and removes those folders, so that nothing is left in
/tmp. When the launcher says "done" first, it has done all that itself.
It ignores SIGINT and SIGTERM, which are the launcher's to handle.

Run as ``python -m launcher.supervise.reaper``; ``Reaper`` is the launcher's handle.
"""

from __future__ import annotations

import contextlib
import os
import shutil
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
    pids: set[int] = set()
    folders: list[str] = []
    done = False
    for raw in sys.stdin.buffer:  # until EOF
        kind, _, value = raw.decode("utf-8", "surrogateescape").rstrip("\n").partition(" ")
        if kind == "pid" and value.isdigit():
            pids.add(int(value))
        elif kind == "dir" and value:
            folders.append(value)
        elif kind == "done":
            done = True  # the launcher cleans its own folders
    if done:  # the launcher stopped its workers itself; their pids may belong to others by now
        return
    for pid in pids:
        signal_group(pid, KILL)
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


class Reaper:
    """The launcher's side: start the reaper, tell it about workers, let it finish."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "launcher.supervise.reaper"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
        )

    def watch(self, pids: list[int]) -> None:
        """Worker pids, each the leader of its process group."""
        self._send([f"pid {pid}" for pid in pids])

    def remove_if_abandoned(self, folder: str) -> None:
        """A temporary folder to remove if the launcher dies before it could."""
        self._send([f"dir {folder}"])

    def _send(self, lines: list[str]) -> None:
        assert self._process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self._process.stdin.write("".join(f"{line}\n" for line in lines).encode("utf-8", "surrogateescape"))
            self._process.stdin.flush()

    def close(self) -> None:
        """EOF: the reaper kills whatever is left of the worker groups and exits."""
        assert self._process.stdin is not None
        self._send(["done"])
        with contextlib.suppress(BrokenPipeError):
            self._process.stdin.close()
        self._process.wait(timeout=10)


if __name__ == "__main__":
    main()
