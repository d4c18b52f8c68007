"""Find every process a run started, even one re-parented to init: by a tag in its environment.

A run started with ``TAG_VARIABLE=<tag>`` in its environment passes it to every
process it starts (workers, DataLoader workers, helpers), so "the run left
nothing behind" means that no live process of this user carries the tag.
Reads other processes' environments through psutil (Linux: /proc). Never imports torch.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid

import psutil

TAG_VARIABLE = "LAUNCHER_TEST_TAG"


def new_tag() -> str:
    return uuid.uuid4().hex


def tagged_processes(tag: str) -> list[psutil.Process]:
    """Live (non-zombie) processes of this user, other than this one, whose environment carries ``tag``."""
    uid = os.getuid()
    found = []
    for process in psutil.process_iter(["uids", "status"]):
        try:
            if process.pid == os.getpid() or process.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if process.info["uids"].real != uid:
                continue
            if process.environ().get(TAG_VARIABLE) == tag:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_until_gone(tag: str, timeout: float, poll: float = 0.002) -> tuple[float, list[psutil.Process]]:
    """Wait until no live process carries ``tag``: ``(time.time() when the last was seen gone, [])``, or
    ``(now, the processes still alive)`` after ``timeout`` seconds.

    Known processes are polled cheaply; a full scan then confirms that nothing
    else carries the tag (a process may have started another meanwhile).
    """
    deadline = time.monotonic() + timeout
    gone_at = time.time()
    while True:
        left = tagged_processes(tag)
        if not left:
            return gone_at, []
        while left:
            if time.monotonic() > deadline:
                return time.time(), left
            time.sleep(poll)
            left = [p for p in left if alive(p)]
        gone_at = time.time()


def kill_tagged(tag: str) -> list[psutil.Process]:
    """SIGKILL every live process carrying ``tag`` and reap what can be reaped; returns them."""
    processes = tagged_processes(tag)
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(processes, timeout=5)
    return processes
