"""Find and stop what a job left running: processes that left their rank's process group, and more.

Stopping a rank's process group stops its children, not a descendant that left the
group or the session (a double-forked ``setsid`` daemon). Two nets catch those:

- While the agent's host lives (Linux): the process that forks the workers is a child
  subreaper (``PR_SET_CHILD_SUBREAPER``), so an orphaned descendant of a rank is re-parented
  to it instead of to init; after each attempt ``Strays.stop`` kills every process under it
  that is not the launcher's own (``spare``: the agent, the reaper, the resource tracker).
- When the launcher died: every process started after the reaper carries the launch's tag
  in its environment (``JOB_TAG_VARIABLE``), inherited by everything it starts unless that
  clears its environment; the reaper kills them all (``stop_tagged``).

Never imports torch; psutil only when there is something to stop (its import costs ~20 ms, which
the end of every job would pay: most leave nothing).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Collection
from typing import TYPE_CHECKING

from launcher.platforms import become_subreaper

if TYPE_CHECKING:
    import psutil

JOB_TAG_VARIABLE = "LAUNCHER_JOB_TAG"
KILL = getattr(signal, "SIGKILL", signal.SIGTERM)  # Windows has no SIGKILL


class Strays:
    """The processes under ``root`` that are not the launcher's own: what a job left behind.

    ``root`` forks the workers and is a subreaper, so descendants of a worker that
    outlived it are under it; ``spare`` are children of ``root`` that belong to the
    launcher (the agent, the reaper, the resource tracker), spared with their descendants.
    Linux only: elsewhere an orphan goes to init and ``stop`` finds nothing to do.
    """

    def __init__(self, root: int, spare: Collection[int]) -> None:
        self._root = root
        self._spare = frozenset(spare)

    @classmethod
    def of_this_process(cls) -> Strays | None:
        """This process forks the workers: a subreaper until ``close``; its children now (the reaper, the
        resource tracker, its caller's own with the Python API) are spared. None where it cannot be one."""
        if not become_subreaper():
            return None
        return cls(os.getpid(), child_pids(os.getpid()))

    def close(self) -> None:
        """This process is no subreaper any more (the Python API's caller goes on after the job)."""
        if self._root == os.getpid():
            become_subreaper(False)

    def stop(self) -> list[int]:
        """SIGKILL every stray (each is reaped if it is our child) and return their pids."""
        if not sys.platform.startswith("linux"):
            return []
        left = set(child_pids(self._root)) - self._spare
        if not left:
            return []
        import psutil

        strays: list[psutil.Process] = []
        for pid in left:
            with contextlib.suppress(psutil.Error):
                child = psutil.Process(pid)
                strays.append(child)
                strays.extend(child.children(recursive=True))
        _kill_all(strays)
        return [p.pid for p in strays]


def child_pids(parent: int) -> list[int]:
    """Linux: the processes whose parent is ``parent`` (from /proc/*/stat, as psutil reads them)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as stat:
                    ppid = int(stat.read().rpartition(b")")[2].split()[1])  # the name, in (), may hold spaces
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile
            if ppid == parent:
                found.append(int(entry.name))
    return found


def tagged(tag: str) -> list[psutil.Process]:
    """Live processes of this user, other than this one, whose environment carries ``JOB_TAG_VARIABLE=tag``."""
    import psutil

    found = []
    for process in psutil.process_iter(["uids", "status"]):
        try:
            if process.pid == os.getpid() or process.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if process.info["uids"] is not None and process.info["uids"].real != os.getuid():
                continue
            if process.environ().get(JOB_TAG_VARIABLE) == tag:
                found.append(process)
        except (psutil.Error, AttributeError):  # gone, not ours, or no uids here (Windows)
            continue
    return found


def stop_tagged(tag: str, timeout: float) -> list[int]:
    """SIGKILL every process that carries ``tag`` (with the group each leads), until none is left or
    ``timeout`` seconds passed (a process may start another meanwhile); returns their pids."""
    deadline = time.monotonic() + timeout
    killed: list[int] = []
    while time.monotonic() < deadline:
        found = tagged(tag)
        if not found:
            break
        _kill_all(found, timeout=max(deadline - time.monotonic(), 0.0))
        killed.extend(p.pid for p in found)
    return killed


def _kill_all(processes: list[psutil.Process], timeout: float = 5.0) -> None:
    """SIGKILL each process (and the group it leads: children that kept it), wait until each is dead, and reap
    those that are this process's children (it may be their subreaper)."""
    import psutil

    for process in processes:
        with contextlib.suppress(psutil.Error, OSError):
            if hasattr(os, "killpg") and os.getpgid(process.pid) == process.pid:
                os.killpg(process.pid, KILL)
            process.kill()
    deadline = time.monotonic() + timeout
    left = processes
    while left and time.monotonic() < deadline:  # a zombie is dead: when another reaps it is not ours to wait for
        time.sleep(0.005)
        left = [p for p in left if _alive(p)]
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.wait(timeout=0)  # reaps it if it is our child; else it is someone else's zombie, or gone


def _alive(process: psutil.Process) -> bool:
    import psutil

    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
