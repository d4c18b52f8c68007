"""The rank server: a fresh interpreter that imports torch once, then forks the ranks of each test.

Started by the pytest process (``launcher.testing.client``) as ``python -m
launcher.testing.server``: a new interpreter, not a fork, so it holds none of
pytest's or pytest-xdist's threads and nothing of what the tests did. It
imports torch, pytest and the rank code, freezes them for the garbage collector
(pages stay shared with the ranks), says it is ready, and serves requests on
its stdin until EOF (the pytest process finished, or died); then it removes the
session's folder (its argument), where the ranks kept their output.

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
import shutil
import signal
import socket
import sys
import time
from dataclasses import dataclass
from typing import NoReturn

from launcher.protocol import STACKS_FILE
from launcher.supervise.stacks import file_size, wait_for_dumps
from launcher.testing.messages import GpuQuery, RankExit, RunReply, RunRequest, receive, send
from launcher.testing.rank import rank_folder, run_rank
from launcher.testing.rewrite import rewritten_code

STOP_GRACE = 1.0  # seconds the other ranks get to end on their own after one failed
STACKS_WAIT = 1.0  # seconds at most for the stacks of the ranks being stopped
POLL = 0.005  # seconds between checks where there are no pidfds
REQUESTS, REPLIES = 0, 1
# What every rank needs, imported once here: torch, pytest's rewriting and reporting, the rank's code.
PRELOAD = ("torch", "torch.distributed", "pytest", "_pytest._code", "_pytest._io", "_pytest.assertion.rewrite",
           "_pytest.assertion.util", "_pytest.pathlib", "_pytest.python", "launcher.runtime.context")


def main(folder: str) -> None:
    """Serve until EOF on stdin; then remove ``folder`` (the session's: the pytest process may be gone)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    replies = os.dup(REPLIES)  # fd 1 becomes stderr's copy: a stray print must not corrupt the replies
    os.dup2(2, 1)
    _preload()
    send(replies, "ready")
    while True:
        request = receive(REQUESTS)
        if request is None:
            _leave(folder)
        if isinstance(request, GpuQuery):
            send(replies, _count_gpus())
        elif isinstance(request, RunRequest):
            reply, ranks = run_test(request, folder, replies)
            send(replies, reply)
            reap(ranks)


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


@dataclass
class _Rank:
    rank: int
    pid: int
    done: int  # the read end of the pipe the rank writes its exit code to, just before it exits
    end: RankExit | None = None


def _leave(folder: str) -> NoReturn:
    """Exit at once: an interpreter shutdown with torch loaded costs tenths of a second, and nothing needs it."""
    shutil.rmtree(folder, ignore_errors=True)
    os._exit(0)


def run_test(request: RunRequest, folder: str, replies: int) -> tuple[RunReply, list[_Rank]]:
    """Run one test; the ranks are left to reap (``reap``) once the reply is sent.

    A rank keeps none of the server's pipes (``replies``, the earlier ranks' ``done``): whatever it leaves
    running must not hold the pytest process's end of the server open.
    """
    started = time.monotonic()
    for rank in range(request.nprocs):
        os.makedirs(rank_folder(request.folder, rank), exist_ok=True)
    if request.rewrite is not None:
        with contextlib.suppress(Exception):  # the rank reports what is wrong with the module
            rewritten_code(request.module_path)
    listener = socket.create_server(("127.0.0.1", 0), backlog=max(128, request.nprocs))
    port = listener.getsockname()[1]
    ranks: list[_Rank] = []
    server = os.getpid()
    try:
        for rank in range(request.nprocs):
            group = ranks[0].pid if ranks else 0
            done, report = os.pipe()
            pid = os.fork()
            if pid == 0:
                for fd in (replies, done, *(earlier.done for earlier in ranks)):
                    os.close(fd)
                run_rank(request, rank, group, listener.fileno(), port, server, report)
            os.close(report)
            os.set_blocking(done, False)
            with contextlib.suppress(OSError):  # the rank does it too: whichever runs first
                os.setpgid(pid, group or pid)
            ranks.append(_Rank(rank, pid, done))
    finally:
        listener.close()
    timed_out = _wait(ranks, started + request.timeout, request.folder, folder)
    _stop_group(ranks)  # ranks on their way out, and whatever they started
    exits = tuple(r.end for r in ranks if r.end is not None)
    return RunReply(exits, timed_out, time.monotonic() - started), ranks


def _wait(ranks: list[_Rank], deadline: float, folder: str, session: str) -> bool:
    """Every rank's end (``_Rank.end``); the ranks still running at the deadline, or ``STOP_GRACE`` after a
    peer failed, are stopped. Whether the deadline passed."""
    running = list(ranks)
    stop_at = deadline
    pidfds = _pidfds(ranks)
    try:
        while running:
            left = stop_at - time.monotonic()
            if left <= 0:
                break
            watched = [REQUESTS, *(r.done for r in running), *(pidfds[r.pid] for r in running if r.pid in pidfds)]
            readable, _, _ = select.select(watched, [], [], left if len(pidfds) == len(ranks) else min(left, POLL))
            if REQUESTS in readable:  # EOF: the pytest process is gone, or gave up on this test
                _stop_group(ranks)
                _leave(session)
            for rank in list(running):
                rank.end = _finished(rank)
                if rank.end is not None:
                    running.remove(rank)
                    if rank.end.exitcode != 0:
                        stop_at = min(stop_at, time.monotonic() + STOP_GRACE)
        if running:
            _dump_stacks(running, folder)
            _stop_group(ranks)
            for rank in running:
                code, number = _status(rank.pid, block=True) or (None, None)
                rank.end = RankExit(rank.rank, code, number, stopped=True, ended_at=time.time())
        return bool(running) and stop_at >= deadline
    finally:
        for fd in pidfds.values():
            os.close(fd)


def _finished(rank: _Rank) -> RankExit | None:
    """How the rank ended: the code it reported just before exiting, or its process's end; None while it runs."""
    try:
        reported = os.read(rank.done, 1)
    except BlockingIOError:
        reported = b""
    if reported:
        return RankExit(rank.rank, reported[0], None, stopped=False, ended_at=time.time())
    status = _status(rank.pid, block=False)
    if status is None:
        return None
    return RankExit(rank.rank, status[0], status[1], stopped=False, ended_at=time.time())


def _status(pid: int, block: bool) -> tuple[int | None, int | None] | None:
    """``(exit code, None)`` or ``(None, signal)`` of an ended rank, left unreaped; None while it runs."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | (0 if block else os.WNOHANG))
    except ChildProcessError:
        return (None, None)
    if info is None:
        return None
    if info.si_code == os.CLD_EXITED:
        return (info.si_status, None)
    return (None, info.si_status)


def reap(ranks: list[_Rank]) -> None:
    """After the reply: the group killed again (what a rank started since), every rank reaped, pipes closed."""
    _stop_group(ranks)
    for rank in ranks:
        os.close(rank.done)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(rank.pid, 0)


def _pidfds(ranks: list[_Rank]) -> dict[int, int]:
    """A pidfd per rank (readable once it ended), where the system has them."""
    fds: dict[int, int] = {}
    if hasattr(os, "pidfd_open"):
        for rank in ranks:
            with contextlib.suppress(OSError):
                fds[rank.pid] = os.pidfd_open(rank.pid)
    return fds


def _stop_group(ranks: list[_Rank]) -> None:
    """SIGKILL the ranks' process group (led by the first rank, unreaped until ``reap``: its id stays theirs)."""
    if ranks:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(ranks[0].pid, signal.SIGKILL)


def _dump_stacks(running: list[_Rank], folder: str) -> None:
    """Ask each running rank for its Python stacks (faulthandler, SIGUSR1) and wait until they are written."""
    paths = {rank.rank: os.path.join(rank_folder(folder, rank.rank), STACKS_FILE) for rank in running}
    before = {number: file_size(path) for number, path in paths.items()}
    for rank in running:
        with contextlib.suppress(ProcessLookupError):
            os.kill(rank.pid, signal.SIGUSR1)
    wait_for_dumps(paths, before, STACKS_WAIT)


if __name__ == "__main__":
    main(sys.argv[1])
