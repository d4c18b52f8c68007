"""The naive baseline: the model runs in the request thread, one input at a time.

What a first version of a model server usually does, and what the benchmark compares the
batching service with. One model, built at ``start()``, shared by every request thread (a
forward pass under ``torch.inference_mode()`` reads the weights only). ``submit`` runs the job
before it returns, so ``result`` finds it done: the HTTP API is the same as the batching one.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

import torch
from results import ResultStore
from service import Outcome, ServiceClosed
from torch import nn


class InlineService:
    def __init__(self, build_model: Callable[[], nn.Module], device: torch.device, max_results: int = 10_000) -> None:
        self.device = device
        self._build_model = build_model
        self._model: nn.Module | None = None
        self._results = ResultStore(max_results)
        self._closed = threading.Event()

    def start(self) -> InlineService:
        self._model = self._build_model().to(self.device)
        return self

    def submit(self, inputs: torch.Tensor) -> str:
        outcome = self._run(inputs)
        job_id = uuid.uuid4().hex
        self._results.put([(job_id, outcome)])
        return job_id

    def result(self, job_id: str, wait: float) -> Outcome | None:
        return self._results.take(job_id, wait)

    def predict(self, inputs: torch.Tensor, timeout: float) -> Outcome | None:
        return self._run(inputs)

    def stop(self) -> None:
        self._closed.set()

    def _run(self, inputs: torch.Tensor) -> Outcome:
        if self._closed.is_set() or self._model is None:
            raise ServiceClosed("the service is not running")
        try:
            with torch.inference_mode():
                return Outcome(self._model(inputs.unsqueeze(0).to(self.device)).cpu()[0])
        except Exception as error:
            return Outcome(None, f"the model failed: {type(error).__name__}: {error}")
