"""What the HTTP layer needs from a service, and the outcomes and refusals it maps to status codes.

Two services implement it: ``batching.BatchingService`` (request threads enqueue, worker
threads run batches) and ``inline.InlineService`` (the naive baseline: the model runs
in the request thread). Nothing here starts a thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch


class Refused(Exception):
    """A job the service would not take or cannot answer; the message is the one the client sees."""


class QueueFull(Refused):
    """The bounded queue is full: try again later (HTTP 429 with Retry-After)."""


class ServiceClosed(Refused):
    """The service is stopping and takes no new jobs (HTTP 503)."""


class UnknownJob(Refused):
    """No such job: never submitted, already fetched, or evicted from the result store (HTTP 404)."""


@dataclass(frozen=True)
class Outcome:
    """A finished job: the model's output row, or why there is none (the model failed, or shutdown rejected it)."""

    output: torch.Tensor | None
    error: str | None = None
    rejected: bool = False  # dropped unrun at shutdown (HTTP 503), as opposed to failed in the model (HTTP 500)


class Service(Protocol):
    """Submit one input, fetch its outcome later; or both in one call."""

    def submit(self, inputs: torch.Tensor) -> str:
        """Take one input of shape ``(input_size,)``; its job id. Raises QueueFull or ServiceClosed."""
        ...

    def result(self, job_id: str, wait: float) -> Outcome | None:
        """The job's outcome (once: it is then forgotten), waiting up to ``wait`` s; None if still pending.

        Raises UnknownJob.
        """
        ...

    def predict(self, inputs: torch.Tensor, timeout: float) -> Outcome | None:
        """Submit and wait up to ``timeout`` s for the outcome; None if it did not come in time."""
        ...
