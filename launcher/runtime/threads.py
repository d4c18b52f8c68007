"""The one background-thread pattern: start, loop until an Event, bounded join, errors surface in the owner.

Used by the worker's heartbeat and parent watchdog, and by the launcher's
output router, and by the checkpoint writer; the monitor will use it too. A loop
step that raises stops the loop; the error is re-raised in the owning thread
at the next ``check()`` or at ``stop()``. Steps must never call CUDA.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class BackgroundLoop:
    """Call ``step()`` every ``interval`` seconds (at a fixed rate) in a daemon thread until stopped.

    With ``interval=0`` the step itself must block for a while (e.g. a select
    with a timeout), so that the loop does not spin.
    """

    def __init__(self, name: str, step: Callable[[], None], interval: float) -> None:
        self._name = name
        self._step = step
        self._interval = interval
        self._stopping = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> BackgroundLoop:
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            due = time.monotonic()
            while not self._stopping.is_set():
                self._step()
                if not self._interval:
                    continue
                # At a fixed rate: the step's own time does not push the next one back (one missed is skipped).
                now = time.monotonic()
                due = max(due + self._interval, now)
                if self._stopping.wait(due - now):
                    break
        except BaseException as error:  # surfaced in the owner by check() or stop()
            self._error = error

    def check(self) -> None:
        """Re-raise, in the caller's thread, an error the loop died of."""
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def request_stop(self) -> None:
        """Ask the loop to end after the current step, without waiting."""
        self._stopping.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the loop to end, wait at most ``timeout`` seconds, and re-raise its error if any."""
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self.check()
