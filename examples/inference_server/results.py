"""The result store: jobs pending and finished, bounded, with waits that wake when a result arrives.

Bounds: pending jobs are bounded by the service (queue size plus the batches being run); finished
results are held until fetched (a fetch removes it: each result is fetched once) and, when more than
``capacity`` are held, the oldest unfetched ones are evicted. A fetch of an evicted result is an
unknown job (404), as is a second fetch.

Each pending job has its own Event: a finished batch wakes the waiters of its jobs only, not every
request thread that waits (as one shared Condition would).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable

from service import Outcome, UnknownJob


class ResultStore:
    """Thread-safe: request threads add and fetch, worker threads put outcomes."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # notified when the last pending job finishes
        self._pending: dict[str, threading.Event] = {}
        self._done: OrderedDict[str, Outcome] = OrderedDict()
        self.evicted = 0  # unfetched results dropped to stay within capacity

    def add_pending(self, job_id: str) -> None:
        with self._lock:
            self._pending[job_id] = threading.Event()

    def forget(self, job_id: str) -> None:
        """Drop a pending job that never made it into the queue."""
        with self._lock:
            self._pending.pop(job_id, None)
            if not self._pending:
                self._idle.notify_all()

    def put(self, outcomes: Iterable[tuple[str, Outcome]]) -> None:
        """Finish jobs and wake their waiters."""
        finished = []
        with self._lock:
            for job_id, outcome in outcomes:
                self._done[job_id] = outcome
                event = self._pending.pop(job_id, None)
                if event is not None:
                    finished.append(event)
            while len(self._done) > self._capacity:
                self._done.popitem(last=False)
                self.evicted += 1
            if not self._pending:
                self._idle.notify_all()
        for event in finished:
            event.set()

    def take(self, job_id: str, wait: float) -> Outcome | None:
        """The outcome, removed from the store; None if still pending after ``wait`` s. Raises UnknownJob."""
        with self._lock:
            outcome = self._done.pop(job_id, None)
            if outcome is not None:
                return outcome
            event = self._pending.get(job_id)
        if event is None:
            raise UnknownJob(f"unknown job id {job_id!r} (never submitted, already fetched, or evicted)")
        deadline = time.monotonic() + wait
        while not event.wait(max(0.0, deadline - time.monotonic())):
            if time.monotonic() >= deadline:
                return None
        with self._lock:
            outcome = self._done.pop(job_id, None)
        if outcome is None:  # evicted between its put and this fetch, or fetched by another request
            raise UnknownJob(f"job {job_id!r}: its result was evicted or fetched already")
        return outcome

    def finish_pending(self, outcome: Outcome) -> int:
        """Give every pending job ``outcome`` (at shutdown: waiters get an answer); how many there were."""
        with self._lock:
            pending = list(self._pending)
        self.put((job_id, outcome) for job_id in pending)
        return len(pending)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no job is pending; False if some still are after ``timeout`` s."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._pending, timeout)
