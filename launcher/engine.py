"""Run elastic's agent for a LaunchPlan in this process and return a RunResult.

Elastic does the work (rendezvous, store, worker processes, restarts, error
files). What is ours: an agent that waits on worker exits instead of sleeping
between polls and stops workers with the plan's grace period, worker output
routed through FIFOs, and the translation of elastic's failures into
``RankFailure``s. This process is the one that hosts the agent: a child of the
torch-preloaded server (``agent_host.py``), or the launcher itself under spawn.
Imports torch inside its functions.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from launcher.bootstrap import WorkerPayload
from launcher.output import OutputPolicy, OutputRouter, fifos_supported
from launcher.plan import CHOSEN_AT_LAUNCH, LaunchPlan
from launcher.result import Hang, RankFailure, RunResult

if TYPE_CHECKING:
    from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

    from launcher.agent import WorkerWatcher


def worker_environment(plan: LaunchPlan) -> dict[str, str]:
    """What every worker gets on top of elastic's rank variables.

    Passed in the payload rather than through this process's environment: a
    forkserver child inherits the server's environment, fixed when it started.
    """
    return {
        "OMP_NUM_THREADS": plan.omp_num_threads,
        "TORCHELASTIC_SIGNALS_TO_HANDLE": plan.config.world.signals_to_handle,
        **plan.worker_env,
    }


@contextlib.contextmanager
def process_environment(overrides: Mapping[str, str]) -> Iterator[None]:
    """This process's environment holds ``overrides`` in the block, then is as it was.

    Spawned workers start with the agent's environment: a variable read when an
    interpreter starts (PYTHONHASHSEED, LD_PRELOAD, thread counts) acts only if
    it is there when a worker is spawned, as torchrun's workers get theirs.
    Elastic reads TORCHELASTIC_SIGNALS_TO_HANDLE from it too.
    """
    saved = {name: os.environ.get(name) for name in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_agent(plan: LaunchPlan, log_dir: str, watcher: WorkerWatcher) -> RunResult:
    """Run the plan's workers to the end; ``watcher`` hears every worker pid as it starts."""
    router = OutputRouter(output_policy(plan)) if fifos_supported() else None
    try:
        return _run_agent(plan, log_dir, router, watcher)
    finally:
        if router is not None:
            router.close()


def output_policy(plan: LaunchPlan) -> OutputPolicy:
    """Where worker output goes, as the plan decided it."""
    shown = {int(r) for r in plan.config.logs.local_ranks_filter.split(",") if r.strip()}
    hidden = {(rank.local_rank, name) for rank in plan.ranks for name in rank.hidden}
    return OutputPolicy(frozenset(shown) or None, frozenset(hidden), plan.log_dir is not None, plan.nprocs)


def _run_agent(plan: LaunchPlan, log_dir: str, router: OutputRouter | None, watcher: WorkerWatcher) -> RunResult:
    from torch.distributed.elastic.agent.server.api import WorkerSpec
    from torch.distributed.elastic.multiprocessing.api import SignalException

    from launcher.agent import HangPolicy, LauncherAgent, RunLogsSpecs
    from launcher.bootstrap import run_worker
    from launcher.rendezvous import handler_for

    quiet_engine_logs(os.environ)
    world, monitor = plan.config.world, plan.config.monitor
    rdzv = plan.rendezvous
    handler = handler_for(rdzv.backend, rdzv.endpoint.replace(CHOSEN_AT_LAUNCH, "0"), rdzv.run_id, rdzv.min_nodes,
                          rdzv.max_nodes, world.local_addr, dict(rdzv.conf))
    payload = WorkerPayload(target=plan.target, args=plan.target_args, config=plan.config,
                            start_method=plan.start.method, kwargs=dict(plan.config.kwargs),
                            env=worker_environment(plan))
    spec = WorkerSpec(
        role=world.role,
        local_world_size=plan.nprocs,
        entrypoint=run_worker,
        args=(payload,),
        rdzv_handler=handler,
        max_restarts=world.max_restarts,
        monitor_interval=1e-6,  # the agent waits on worker exits itself: see LauncherAgent
        local_addr=world.local_addr,
    )
    hang_policy = None
    if monitor.hang_timeout:
        startup = monitor.hang_startup if monitor.hang_startup is not None else 5 * monitor.hang_timeout
        hang_policy = HangPolicy(monitor.hang_timeout, startup)
    agent = LauncherAgent(
        spec=spec,
        logs=RunLogsSpecs(log_dir, router),
        router=router,
        watcher=watcher,
        hang=hang_policy,
        on_restart=lambda attempt, failures: _report_restart(plan, attempt, failures),
        start_method=plan.start.method,
        grace_period=world.shutdown_timeout,
        wait_interval=world.monitor_interval,
    )
    interrupted = None
    try:
        with process_environment(worker_environment(plan)):
            outcome = agent.run()
    except SignalException as stop:
        interrupted, outcome = signal.Signals(stop.sigval).name, None
    finally:
        handler.shutdown()
    restarts = world.max_restarts - agent.remaining_restarts
    common = {"restarts": restarts, "log_dir": plan.log_dir}
    if interrupted is not None:
        return RunResult(interrupted_by=interrupted, **common)  # type: ignore[arg-type]
    assert outcome is not None
    if not outcome.is_failed():
        return RunResult(return_values=dict(outcome.return_values), **common)  # type: ignore[arg-type]

    def lines(local_rank: int) -> tuple[str, ...]:
        return router.last_lines(local_rank) if router is not None else ()

    stopped = {rank: (restarts, f.local_rank) in agent.stopped_ranks for rank, f in outcome.failures.items()}
    first_raise = min((raised for rank, f in outcome.failures.items() if not stopped[rank]
                       if (raised := _read_error(f.error_file_data)[2]) is not None), default=None)
    failures = sorted(
        (
            _to_rank_failure(rank, f, agent.exit_times.get((restarts, f.local_rank)), stopped[rank],
                             lines(f.local_rank), first_raise)
            for rank, f in outcome.failures.items()
        ),
        key=lambda f: f.timestamp,
    )
    hang = None
    if agent.hang_report is not None and monitor.hang_timeout:
        report = agent.hang_report
        hang = Hang(report.rank, report.local_rank, report.idle, monitor.hang_timeout, lines(report.local_rank))
    return RunResult(failures=tuple(failures), hang=hang, **common)  # type: ignore[arg-type]


def _report_restart(plan: LaunchPlan, attempt: int, failures: Mapping[int, ProcessFailure]) -> None:
    causes = ", ".join(f"rank {rank} ({_how(f)})" for rank, f in sorted(failures.items())) or "a failure"
    print(f"launcher: {causes} failed; restarting the workers (attempt {attempt + 1} of "
          f"{plan.config.world.max_restarts + 1})", file=sys.stderr, flush=True)


def _how(failure: ProcessFailure) -> str:
    if failure.exitcode is not None and failure.exitcode < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-failure.exitcode).name}"
    return f"exit code {failure.exitcode}"


def _to_rank_failure(rank: int, failure: ProcessFailure, seen_at: float | None, stopped: bool,
                     last_lines: tuple[str, ...], first_raise: float | None = None) -> RankFailure:
    """Elastic's record as ours. ``first_raise``: the earliest exception among the ranks that failed
    before the launcher stopped the others (None if none of them raised)."""
    exitcode: int | None = failure.exitcode
    signal_name = None
    if exitcode is not None and exitcode < 0:
        try:
            signal_name = signal.Signals(-exitcode).name
        except ValueError:
            signal_name = f"signal {-exitcode}"
        exitcode = None
    message, trace, raised_at = _read_error(failure.error_file_data)
    if stopped and raised_at is not None and first_raise is not None and raised_at < first_raise:
        # It raised before the rank that made the launcher stop the job, and was stopped on its way
        # out (the bootstrap exits 1 after writing the error file): the root cause, not a consequence.
        exitcode, signal_name, stopped = 1, None, False
    return RankFailure(
        rank=rank,
        local_rank=failure.local_rank,
        host=_hostname(),
        pid=failure.pid,
        exitcode=exitcode,
        signal=signal_name,
        timestamp=raised_at or seen_at or float(failure.timestamp),
        stopped_by_launcher=stopped,
        message=message,
        traceback=trace,
        last_lines=last_lines,
    )


def _read_error(data: Any) -> tuple[str | None, str | None, float | None]:
    """Elastic's error-file layout: {"message": {"message": ..., "extraInfo": {"py_callstack": ...}}}.

    The bootstrap adds ``extraInfo.time``, the sub-second time the exception was raised.
    """
    if not isinstance(data, dict) or "message" not in data:
        return None, None, None
    body = data["message"]
    if body in ("<NONE>", "<N/A>", None):  # elastic's placeholders when no error file was written
        return None, None, None
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return body, None, None
    if not isinstance(body, dict):
        return str(body), None, None
    extra = body.get("extraInfo") or {}
    raised_at = extra.get("time")
    return body.get("message"), extra.get("py_callstack"), float(raised_at) if raised_at else None


def quiet_engine_logs(environ: Mapping[str, str]) -> None:
    """Elastic logs every failure with its own traceback; the launcher's summary replaces that.

    ``LOGLEVEL`` (torchrun's variable) keeps elastic's logs as they are.
    """
    if "LOGLEVEL" in environ:
        return
    for name in list(logging.root.manager.loggerDict):
        if name.startswith(("torch.distributed.elastic", "torch.multiprocessing")):
            logging.getLogger(name).setLevel(logging.CRITICAL)


def _hostname() -> str:
    from launcher.hostinfo import hostname

    return hostname()
