"""Elastic's LocalElasticAgent with the launcher's process-stopping policy.

Subclassed, not copied: the agent waits on worker exits (a failure is seen
when it happens, not at the next poll), stops workers with the plan's grace
period instead of a fixed 30 s, and writes logs where the plan says, with no
``torchelastic_*`` directory left in /tmp. Imports torch: launch side.
"""

from __future__ import annotations

import multiprocessing.connection
import os
import signal
from typing import Any

from torch.distributed.elastic.agent.server.api import RunResult, WorkerGroup
from torch.distributed.elastic.agent.server.local_elastic_agent import LocalElasticAgent
from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs


class RunLogsSpecs(DefaultLogsSpecs):
    """Per-rank files at ``<log_dir>/attempt_<n>/<local_rank>/``: no random subfolder."""

    def _make_log_dir(self, log_dir: str | None, rdzv_run_id: str) -> str:
        assert log_dir is not None  # the supervisor always passes one
        os.makedirs(log_dir, exist_ok=True)
        return log_dir


class LauncherAgent(LocalElasticAgent):
    def __init__(self, *, grace_period: float, wait_interval: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._grace_period = grace_period
        self._wait_interval = wait_interval

    @property
    def remaining_restarts(self) -> int:
        return self._remaining_restarts

    def _sentinels(self) -> list[int]:
        context = getattr(self._pcontext, "_pc", None)
        processes = getattr(context, "processes", None) or []
        return [p.sentinel for p in processes if p.exitcode is None]

    def _monitor_workers(self, worker_group: WorkerGroup) -> RunResult:
        sentinels = self._sentinels()
        if sentinels:
            multiprocessing.connection.wait(sentinels, timeout=self._wait_interval)
        return super()._monitor_workers(worker_group)

    def _stop_workers(self, worker_group: WorkerGroup) -> None:
        self._shutdown(signal.SIGTERM, self._grace_period)

    def _shutdown(self, death_sig: signal.Signals = signal.SIGTERM, timeout: float | None = None) -> None:
        super()._shutdown(death_sig, self._grace_period if timeout is None else timeout)  # type: ignore[arg-type]
