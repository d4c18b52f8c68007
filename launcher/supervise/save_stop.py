"""Save and stop: the user's (or SLURM's) request that every rank checkpoints, then the job ends.

The request is a signal to the launcher (``checkpoint.stop_signal``, SIGUSR1 by
default). Not SIGTERM: the launcher's stop signals end every rank at once, and
a Python handler cannot run in a rank blocked in a collective. The launcher
never signals a worker for it (SIGUSR1 in a worker asks faulthandler for its
stacks): it passes the request to its agent process (``protocol.AGENT_SAVE_SIGNAL``,
or handles the signal itself where the agent runs in the launcher); the agent
sets ``protocol.SAVE_AND_STOP_KEY`` in the job's c10d store, which the ranks of
every node reach, and sets it again in each new rendezvous round (a restart).
Every rank's checkpointer then saves at the step rank 0 names and exits 0; rank
0 first sets ``protocol.STOPPED_KEY`` to that step, which the agent reads once
the workers are done: the launcher then exits 75 (``errors.EXIT_STOPPED``).
A job without a checkpointer never sees the request and runs to its end.

Launch side; imports torch only where it touches the store.
"""

from __future__ import annotations

import contextlib
import datetime
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from launcher.protocol import SAVE_AND_STOP_KEY, STOPPED_KEY


class SaveAndStop:
    """The request, as the agent's process received it, and what became of it."""

    def __init__(self, signal_name: str | None) -> None:
        self.signal_name = signal_name  # as the user sends it (None: no save and stop), for the messages
        self.requested = False
        self._posted_to: Any = None  # the store the request was set in (a new one each rendezvous round)
        self.stopped: int | None = None  # the step every rank saved before stopping on the request

    @contextlib.contextmanager
    def receiving(self, number: int | None) -> Iterator[None]:
        """Note the request when signal ``number`` arrives, in the block (main thread only)."""
        if number is None or threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.signal(number, self._receive)
        try:
            yield
        finally:
            signal.signal(number, previous)

    def _receive(self, _number: int, _frame: FrameType | None) -> None:
        self.requested = True  # acted on by the agent's monitoring loop: no store call in a signal handler

    def post(self, worker_group: Any) -> None:
        """Set the request in the workers' store once it was received (again for a new round's store)."""
        store = worker_group.store
        if not self.requested or store is None or store is self._posted_to:
            return
        workers_store(worker_group).set(SAVE_AND_STOP_KEY, "1")
        if self._posted_to is None:
            print(f"launcher: {self.signal_name}: every rank saves a checkpoint at its next maybe_save, then the "
                  "job stops", file=sys.stderr, flush=True)
        self._posted_to = store

    def read_stopped(self, worker_group: Any) -> None:
        """Note the step every rank saved before stopping, if the ranks stopped on a request: this node's,
        or another node's (each node's launcher then exits 75).

        The agent reads it as soon as its workers are done, before elastic's exit barrier lets the node
        that serves the workers' store go; a store already gone leaves ``stopped`` unset.
        """
        if self.stopped is not None or worker_group.store is None:
            return
        try:
            store = workers_store(worker_group)
            if store.check([STOPPED_KEY]):
                self.stopped = int(store.get(STOPPED_KEY).decode())
        except (RuntimeError, OSError):  # torch's DistError is a RuntimeError
            pass


def workers_store(worker_group: Any) -> Any:
    """The store the workers reach at ``MASTER_ADDR:MASTER_PORT``.

    The rendezvous's own store without its prefixes where the workers use that one (the static rendezvous:
    the agent's store); else a client of the store the workers were given (elastic's c10d rendezvous
    serves them one of its own on the first node, not the rendezvous store at the endpoint).
    """
    store = job_store(worker_group.store)
    port = worker_group.master_port
    if port is None or getattr(store, "port", port) == port:
        return store
    from torch.distributed import TCPStore  # type: ignore[attr-defined]

    return TCPStore(worker_group.master_addr, port, is_master=False, timeout=datetime.timedelta(seconds=30))


def job_store(store: Any) -> Any:
    """The rendezvous' store without its prefixes."""
    from torch.distributed import PrefixStore  # type: ignore[attr-defined]

    while isinstance(store, PrefixStore):
        store = store.underlying_store
    return store
