"""One model server: a service (batching, or the inline baseline) behind the HTTP front end.

``start()`` builds and starts both; ``stop()`` shuts down in the order that lets every accepted
request get an answer: stop accepting connections, stop the service (it refuses new jobs, runs or
rejects the queued ones, joins its workers), then close the port and join the request threads.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from batching import BatchingConfig, BatchingService
from http_api import HTTPFrontEnd, InferenceHTTPServer
from inline import InlineService
from mlp import ModelSpec, build_model

Mode = Literal["batch", "inline"]


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port (see InferenceServer.port)
    mode: Mode = "batch"  # inline: the model runs in the request thread (the naive baseline)
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    drain_timeout: float = 2.0  # seconds queued jobs may still run at shutdown before they are rejected


class InferenceServer:
    def __init__(self, spec: ModelSpec, device: torch.device, config: ServerConfig) -> None:
        self.spec = spec
        self.config = config
        build = functools.partial(build_model, spec)
        self.service: BatchingService | InlineService = (
            BatchingService(build, device, config.batching) if config.mode == "batch"
            else InlineService(build, device, config.batching.max_results))
        self._front: HTTPFrontEnd | None = None

    @property
    def port(self) -> int:
        if self._front is None:
            raise RuntimeError("the server is not started")
        return self._front.port

    def start(self) -> InferenceServer:
        self.service.start()
        try:
            http = InferenceHTTPServer((self.config.host, self.config.port), self.service, self.spec.input_size,
                                       self.health)
        except BaseException:
            self._stop_service()
            raise
        self._front = HTTPFrontEnd(http).start()
        return self

    def health(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"status": "ok", "mode": self.config.mode, "device": str(self.service.device),
                                 "input_size": self.spec.input_size}
        if isinstance(self.service, BatchingService):
            facts.update(queued=self.service.queued(), batches=self.service.batches, jobs=self.service.jobs_run)
        return facts

    def check(self) -> None:
        """Re-raise the error a worker or the accept loop died of."""
        if isinstance(self.service, BatchingService):
            self.service.check()
        if self._front is not None:
            self._front.check()

    def stop(self) -> None:
        front, self._front = self._front, None
        try:
            if front is not None:
                front.stop_accepting()
        finally:
            try:
                self._stop_service()
            finally:
                if front is not None:
                    front.close()

    def _stop_service(self) -> None:
        if isinstance(self.service, BatchingService):
            self.service.stop(self.config.drain_timeout)
        else:
            self.service.stop()
