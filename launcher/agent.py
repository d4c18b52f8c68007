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
import time
from typing import Any

from torch.distributed.elastic.agent.server.api import RunResult, WorkerGroup, WorkerState
from torch.distributed.elastic.agent.server.local_elastic_agent import LocalElasticAgent
from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, ProcessFailure


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
        self.exit_times: dict[tuple[int, int], float] = {}  # (attempt, local rank) → when its exit was seen
        self.stopped_ranks: set[tuple[int, int]] = set()  # (attempt, local rank) stopped by the launcher

    @property
    def remaining_restarts(self) -> int:
        return self._remaining_restarts

    def _processes(self) -> list[Any]:
        context = getattr(self._pcontext, "_pc", None)
        return list(getattr(context, "processes", None) or [])

    def _monitor_workers(self, worker_group: WorkerGroup) -> RunResult:
        processes = self._processes()
        running = [p.sentinel for p in processes if p.exitcode is None]
        if running:
            multiprocessing.connection.wait(running, timeout=self._wait_interval)
        self._note_exits(processes)
        if any(p.exitcode not in (None, 0) for p in processes):
            return self._fail_fast(worker_group, processes)
        result: RunResult = super()._monitor_workers(worker_group)
        return result

    def _note_exits(self, processes: list[Any]) -> None:
        now = time.time()
        for local_rank, process in enumerate(processes):
            if process.exitcode is not None:
                self.exit_times.setdefault((self._restart_count(), local_rank), now)

    def _fail_fast(self, worker_group: WorkerGroup, processes: list[Any]) -> RunResult:
        """One rank failed: stop the others now, and report every rank that did not succeed.

        Elastic's own poll reports one failure, whichever comes first in rank order;
        the supervisor needs them all to tell the root cause from its consequences.
        """
        assert self._pcontext is not None
        still_running = {i for i, p in enumerate(processes) if p.exitcode is None}
        self._pcontext.close(signal.SIGTERM, self._grace_period)  # type: ignore[arg-type]
        self._note_exits(processes)
        self.stopped_ranks |= {(self._restart_count(), i) for i in still_running}
        failures = {
            worker_group.workers[i].global_rank: ProcessFailure(
                local_rank=i, pid=p.pid, exitcode=p.exitcode, error_file=self._pcontext.error_files[i]
            )
            for i, p in enumerate(processes)
            if p.exitcode not in (None, 0)
        }
        return RunResult(state=WorkerState.FAILED, failures=failures)

    def _restart_count(self) -> int:
        return self._worker_group.spec.max_restarts - self._remaining_restarts

    def _stop_workers(self, worker_group: WorkerGroup) -> None:
        self._shutdown(signal.SIGTERM, self._grace_period)

    def _shutdown(self, death_sig: signal.Signals = signal.SIGTERM, timeout: float | None = None) -> None:
        super()._shutdown(death_sig, self._grace_period if timeout is None else timeout)  # type: ignore[arg-type]
