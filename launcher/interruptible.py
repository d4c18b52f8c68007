"""A blocking call that a signal can interrupt, and that gives up after a timeout.

Elastic's rendezvous blocks inside torch's C++ (creating a TCPStore, waiting for
the other nodes to connect, reading their keys) for as long as its own timeout,
600 s by default. Python runs signal handlers in the main thread between
bytecodes only, so a SIGTERM would wait for that call to return. Here the call
runs in a daemon thread (torch releases the GIL while it waits) and the main
thread waits on the thread's end, a wait that a signal handler interrupts: the
handler's exception (elastic's ``SignalException``) comes out of the wait at
once. A call that outlives the wait is abandoned: the process is on its way out
(stopped, or failed for a rendezvous that did not happen), and a daemon thread
does not keep it alive. The launcher's look-up of the rendezvous host
(``network.resolve``) uses it too: a resolver that does not answer must not hold
a launch up. Standard library only.

Not ``runtime.threads.BackgroundLoop``: this is one call that may never return, not a loop that can be told to stop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
SIGNAL_LATENCY = 0.1  # seconds: the longest a stop signal waits to be handled


class _Outcome(Generic[T]):
    def __init__(self) -> None:
        self.value: T | None = None
        self.error: BaseException | None = None


def call_interruptibly(call: Callable[[], T], timeout: float, name: str) -> T:
    """``call()``, run in a daemon thread named ``name`` and waited for here for at most ``timeout`` seconds.

    Its exception is raised here; TimeoutError if it did not return in time; a signal handler's exception
    interrupts the wait.
    """
    outcome: _Outcome[T] = _Outcome()

    def run() -> None:
        try:
            outcome.value = call()
        except BaseException as error:  # re-raised in the caller's thread
            outcome.error = error

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    # Short waits: a signal the kernel gave another thread (this one is not woken then) is handled here
    # at the next of them at the latest, and its handler's exception comes out of this loop.
    while thread.is_alive() and time.monotonic() < deadline:
        thread.join(min(SIGNAL_LATENCY, max(0.0, deadline - time.monotonic())))
    if thread.is_alive():
        raise TimeoutError(f"{name}: no answer within {timeout:g} s")
    if outcome.error is not None:
        raise outcome.error
    return outcome.value  # type: ignore[return-value]  # set: the call returned
