"""The checkpoint writer: one background thread (``BackgroundLoop``) that runs one save at a time.

The training thread hands over a job (serialise a snapshot, write it
atomically, mark it complete) and goes on. At most one job is in flight: when
the next save is due while the previous one is still being written, the
training thread waits for it (``submit`` returns how long), so every due save
happens, in order; a writer that keeps the trainer waiting says it needs
fewer saves or a faster disk (the checkpointer logs it).

An error in a job stops the writer. It is raised in the training thread at
its next call (``check``, ``submit``, ``wait``) or at ``close``, never lost;
later saves raise a ``RuntimeError`` that points back to it. With
``asynchronous=False`` a job runs in the caller's thread. Jobs never call CUDA.
Worker side: never imports the launch side.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
import time
from collections.abc import Callable

from launcher.runtime.threads import BackgroundLoop

POLL = 0.1  # seconds: how long the idle writer waits for a job before checking whether to stop
NICENESS = 5  # the writer thread's nice value on Linux: training threads come first when CPUs are short


class AsyncWriter:
    """Runs write jobs in order in one background thread, one at a time."""

    def __init__(self, *, asynchronous: bool = True, name: str = "launcher-checkpoint-writer") -> None:
        self._asynchronous = asynchronous
        self._name = name
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._idle = threading.Event()
        self._idle.set()
        self._loop: BackgroundLoop | None = None
        self._failed: BaseException | None = None  # raised in the owner once already
        self._niced = False

    def _step(self) -> None:
        if not self._niced:
            self._niced = True
            _lower_this_threads_priority()
        try:
            job = self._jobs.get(timeout=POLL)
        except queue.Empty:
            return
        try:
            job()
        finally:
            self._idle.set()

    def submit(self, job: Callable[[], None]) -> float:
        """Run ``job`` once the job in flight is done; the seconds the caller waited for that one."""
        started = time.perf_counter()
        self.wait()
        waited = time.perf_counter() - started
        if not self._asynchronous:
            job()
            return waited
        if self._loop is None:
            self._loop = BackgroundLoop(self._name, self._step, interval=0).start()
        self._idle.clear()
        self._jobs.put(job)
        return waited

    def wait(self) -> None:
        """Until the job in flight is done; its error, if it failed, is raised here."""
        self._raise_if_stopped()
        while not self._idle.wait(POLL):
            pass
        self.check()

    def check(self) -> None:
        """Raise, in the caller's thread, the error a job failed with (once; later calls say the writer stopped)."""
        self._raise_if_stopped()
        if self._loop is not None:
            try:
                self._loop.check()
            except BaseException as error:
                self._failed = error
                raise

    def _raise_if_stopped(self) -> None:
        if self._failed is not None:
            raise RuntimeError(f"the checkpoint writer stopped after an earlier error: "
                               f"{type(self._failed).__name__}: {self._failed}")

    def close(self) -> None:
        """Wait for the job in flight and end the thread; an error not raised yet is raised here."""
        try:
            if self._failed is None:
                self.wait()
        finally:
            if self._loop is not None:
                self._loop.stop()
                self._loop = None


def _lower_this_threads_priority() -> None:
    """Linux schedules threads one by one: a nicer writer leaves the CPUs to training when they are all busy."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICENESS)
