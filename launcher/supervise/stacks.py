"""Which rank holds up a hung job, from every rank's Python stacks (faulthandler's dumps); and whether
a rank's exception came out of a collective (a consequence of a peer's failure, see ``failures.py``).

When the hang watchdog fires, the agent asks every rank for its stacks
(SIGUSR1: the bootstrap has faulthandler write them to the rank's
``STACKS_FILE``, see ``launcher.protocol``). A rank whose main thread is inside
``torch.distributed`` (a collective, a barrier, a store wait, DDP's
synchronisation) is waiting for the others; the rank to name is one that is
not. Only Python frames are seen: a wait entered from user code through a C
method (``work.wait()``, ``store.get()``) looks like user code.

Pure text work: no processes, no torch.
"""

from __future__ import annotations

import os
import re
import sysconfig
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

K = TypeVar("K")

# A thread's header in a dump: "Thread 0x00007f..." or "Current thread 0x00007f..." (3.13+ may add a name).
_THREAD = re.compile(r"^(?:Current thread|Thread) 0x([0-9a-fA-F]+)\b")
_FRAME = re.compile(r'^\s+File "(.*)", line (?:\d+|\?\?\?),? in ')  # a dump's, or a traceback's (with a comma)
# Where a rank waits for the others.
_WAITING = ("/torch/distributed/", "/torch/nn/parallel/distributed.py")
# Frames a wait passes through on its way from torch.distributed: torch's own, and the standard library's.
_PASSED_THROUGH = ("/torch/", "<frozen ")
_STDLIB = sysconfig.get_paths()["stdlib"].replace("\\", "/").rstrip("/") + "/"


def main_thread_stack(dump: str, main: int | None) -> tuple[str, ...]:
    """The frame lines of the main thread in one faulthandler dump, most recent call first.

    The main thread is ``main`` (its ident); when it is None or not in the dump,
    the last thread dumped (CPython lists threads newest first).
    """
    threads: list[tuple[int, list[str]]] = []
    for line in dump.splitlines():
        header = _THREAD.match(line)
        if header:
            threads.append((int(header.group(1), 16), []))
        elif threads and line.startswith(" "):
            threads[-1][1].append(line.rstrip())
    named = [frames for ident, frames in threads if ident == main]
    return tuple(named[-1] if named else threads[-1][1] if threads else ())


def waits_for_others(stack: tuple[str, ...]) -> bool:
    """Whether this main-thread stack (most recent call first) is inside torch.distributed, waiting."""
    for line in stack:
        match = _FRAME.match(line)
        if not match:
            continue
        path = match.group(1).replace("\\", "/")
        if any(part in path for part in _WAITING):
            return True
        if not (any(part in path for part in _PASSED_THROUGH) or _in_stdlib(path)):
            return False  # the user's code (or another library's) is running: not a wait for the others
    return False


def raised_in_collective(traceback: str) -> bool:
    """Whether a Python traceback (oldest call first) was raised inside torch.distributed: from a collective,
    a barrier or a store wait, as when a peer went away ('Connection closed by peer')."""
    frames = [line for line in traceback.splitlines() if _FRAME.match(line)]
    return waits_for_others(tuple(reversed(frames)))


def _in_stdlib(path: str) -> bool:
    return path.startswith(_STDLIB) and "/site-packages/" not in path and "/dist-packages/" not in path


@dataclass(frozen=True)
class Blame:
    """The rank that holds up the job, and the ranks seen waiting for it in a collective (both local ranks)."""

    local_rank: int
    waiting: tuple[int, ...]


def holding_up(idle_rank: int, stacks: Mapping[int, tuple[str, ...]], last_progress: Mapping[int, float]) -> Blame:
    """The rank to name for a hang first seen on ``idle_rank`` (local ranks throughout).

    A rank outside any collective while others wait in one holds them up: the
    idle rank itself if it is one, else the one that made progress longest
    ago (``last_progress``: wall-clock time). When every rank waits, or no
    stack came back, the idle rank is named.
    """
    waiting = tuple(sorted(rank for rank, stack in stacks.items() if waits_for_others(stack)))
    running = [rank for rank, stack in stacks.items() if stack and rank not in waiting]
    if not waiting or not running or idle_rank in running:
        return Blame(idle_rank, waiting)
    return Blame(min(running, key=lambda rank: (last_progress.get(rank, 0.0), rank)), waiting)


def console_lines(rank: int, dump: str) -> str:
    """A rank's dump as console lines, each with the rank's ``[rankN]:`` prefix."""
    return "".join(f"[rank{rank}]: {line}\n" for line in dump.splitlines())


def wait_for_dumps(paths: Mapping[K, str], before: Mapping[K, int], limit: float, poll: float = 0.05) -> None:
    """After SIGUSR1 to the ranks: wait, at most ``limit`` seconds, until every stacks file grew past its size in
    ``before`` and none grew during the last ``poll`` (faulthandler writes a dump from its handler, in several
    writes)."""
    seen, deadline = dict(before), time.monotonic() + limit
    while time.monotonic() < deadline:
        time.sleep(poll)
        now = {key: file_size(path) for key, path in paths.items()}
        if now == seen and all(now[key] > before[key] for key in paths):
            return
        seen = now


def file_size(path: str) -> int:
    """The file's size; -1 when it does not exist (yet)."""
    try:
        return os.path.getsize(path)
    except OSError:
        return -1
