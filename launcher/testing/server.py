"""The rank server: a fresh interpreter that imports torch once, then forks the ranks of each test.

Started by the pytest process (``launcher.testing.client``) as ``python -m
launcher.testing.server``: a new interpreter, not a fork, so it holds none of
pytest's or pytest-xdist's threads and nothing of what the tests did. It
imports torch, pytest and the rank code, freezes them for the garbage collector
(pages stay shared with the ranks), says it is ready, and serves requests on
its stdin until EOF (the pytest process finished, or died).

For each test it binds the store's socket, forks the ranks into one process
group of their own, and waits for them (pidfds, or polling where there are
none). When a rank fails, the others get ``STOP_GRACE`` seconds to end too; at
the test's timeout, or after that grace, the ranks still running dump their
Python stacks (SIGUSR1) and the whole group is killed, also what the ranks
started. Ranks die with the server (their parent-death signal); the server
keeps no thread, and ignores Ctrl-C (the pytest process decides and closes
its stdin).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import time

from launcher.testing.messages import GpuQuery, RankExit, RunReply, RunRequest, receive, send
from launcher.testing.rank import rank_folder, run_rank

STOP_GRACE = 1.0  # seconds the other ranks get to end on their own after one failed
STACKS_WAIT = 1.0  # seconds at most for the stacks of the ranks being stopped
POLL = 0.005  # seconds between checks where there are no pidfds
REQUESTS, REPLIES = 0, 1
# What every rank needs, imported once here: torch, pytest's rewriting and reporting, the rank's code.
PRELOAD = ("torch", "torch.distributed", "pytest", "_pytest._code", "_pytest._io", "_pytest.assertion.rewrite",
           "_pytest.assertion.util", "_pytest.pathlib", "_pytest.python", "launcher.runtime.context")


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    replies = os.dup(REPLIES)  # fd 1 becomes stderr's copy: a stray print must not corrupt the replies
    os.dup2(2, 1)
    _preload()
    send(replies, "ready")
    while True:
        request = receive(REQUESTS)
        if request is None:
            return
        if isinstance(request, GpuQuery):
            send(replies, _count_gpus())
        elif isinstance(request, RunRequest):
            send(replies, run_test(request))


def _preload() -> None:
    import gc
    import importlib

    gc.disable()
    try:
        for name in PRELOAD:
            importlib.import_module(name)
    finally:
        gc.freeze()
        gc.enable()


def _count_gpus() -> int:
    """CUDA devices, counted in a child: CUDA initialised here would break every rank forked after."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            import torch

            os.write(write, str(torch.cuda.device_count() if torch.cuda.is_available() else 0).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as answer:
        text = answer.read()
    os.waitpid(pid, 0)
    return int(text) if text.strip() else 0


def run_test(request: RunRequest) -> RunReply:
    started = time.monotonic()
    for rank in range(request.nprocs):
        os.makedirs(rank_folder(request.folder, rank), exist_ok=True)
    listener = socket.create_server(("127.0.0.1", 0), backlog=max(128, request.nprocs))
    port = listener.getsockname()[1]
    ranks: dict[int, int] = {}  # pid → rank
    group = 0
    server = os.getpid()
    try:
        for rank in range(request.nprocs):
            pid = os.fork()
            if pid == 0:
                run_rank(request, rank, group, listener.fileno(), port, server)
            group = group or pid
            with contextlib.suppress(OSError):  # the rank does it too: whichever runs first
                os.setpgid(pid, group)
            ranks[pid] = rank
    finally:
        listener.close()
    exits, timed_out = _wait(ranks, group, started + request.timeout, request.folder)
    return RunReply(tuple(sorted(exits, key=lambda e: e.rank)), timed_out, time.monotonic() - started)


def _wait(ranks: dict[int, int], group: int, deadline: float, folder: str) -> tuple[list[RankExit], bool]:
    """Every rank's end; the ranks still running at the deadline (or after a peer failed) are stopped."""
    exits: list[RankExit] = []
    running = dict(ranks)
    watch = _Watch(running)
    stop_at = deadline
    try:
        while running:
            left = stop_at - time.monotonic()
            if left <= 0:
                break
            if watch.wait(left):
                _stop_group(group)  # the pytest process is gone, or gave up on this test
                os._exit(0)
            for pid, (code, number) in [(pid, end) for pid in running if (end := _ended(pid)) is not None]:
                exits.append(RankExit(running.pop(pid), code, number, stopped=False, ended_at=time.time()))
                watch.forget(pid)
                if code != 0:
                    stop_at = min(stop_at, time.monotonic() + STOP_GRACE)
        timed_out = bool(running) and stop_at >= deadline
        if running:
            _dump_stacks(running, folder)
        _stop_group(group)
        for pid, rank in running.items():
            code, number = _reaped(pid)
            exits.append(RankExit(rank, code, number, stopped=True, ended_at=time.time()))
        running.clear()
        return exits, timed_out
    finally:
        watch.close()
        _stop_group(group)
        for pid in ranks:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)  # ended ranks were kept as zombies: their pids (the group's) stayed ours


def _ended(pid: int) -> tuple[int | None, int | None] | None:
    """``(exit code, None)`` or ``(None, signal)`` of an ended rank, left unreaped; None while it runs."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return (None, None)
    if info is None:
        return None
    if info.si_code == os.CLD_EXITED:
        return (info.si_status, None)
    return (None, info.si_status)


def _reaped(pid: int) -> tuple[int | None, int | None]:
    with contextlib.suppress(ChildProcessError):
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    return _ended(pid) or (None, None)


def _stop_group(group: int) -> None:
    if group:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)


def _dump_stacks(running: dict[int, int], folder: str) -> None:
    """Ask each running rank for its Python stacks (faulthandler, SIGUSR1) and wait until they are written."""
    sizes = {}
    for pid, rank in running.items():
        path = os.path.join(rank_folder(folder, rank), "stacks.txt")
        sizes[path] = _size(path)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + STACKS_WAIT
    while time.monotonic() < deadline and any(_size(path) <= size for path, size in sizes.items()):
        time.sleep(POLL)
    time.sleep(POLL * 4)  # faulthandler writes a dump in several writes: let the last ones land


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


class _Watch:
    """Waits until a rank ends or the requests pipe becomes readable (EOF: the pytest process is gone)."""

    def __init__(self, running: dict[int, int]) -> None:
        self._fds: dict[int, int] = {}
        if hasattr(os, "pidfd_open"):
            for pid in running:
                with contextlib.suppress(OSError):
                    self._fds[pid] = os.pidfd_open(pid)
        self._complete = hasattr(os, "pidfd_open") and len(self._fds) == len(running)

    def wait(self, timeout: float) -> bool:
        """Whether the requests pipe became readable; returns early when a rank may have ended."""
        limit = timeout if self._complete else min(timeout, POLL)
        readable, _, _ = select.select([REQUESTS, *self._fds.values()], [], [], limit)
        return REQUESTS in readable

    def forget(self, pid: int) -> None:
        fd = self._fds.pop(pid, None)
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        for pid in list(self._fds):
            self.forget(pid)


if __name__ == "__main__":
    main()
