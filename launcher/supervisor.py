"""Run a LaunchPlan on torch.distributed.elastic and return a RunResult.

Elastic does the work (rendezvous, store, worker processes, restarts, error
files). What is ours: the torch-preloaded forkserver started before this
process imports torch, an agent that waits on worker exits instead of
sleeping between polls and stops workers with the plan's grace period, log
files under the user's log dir (or a private temp dir removed at exit), and
the translation of elastic's failures into ``RankFailure``s.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from launcher.bootstrap import WorkerPayload
from launcher.plan import LaunchPlan
from launcher.result import RankFailure, RunResult

if TYPE_CHECKING:
    from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

PRELOAD = ["torch", "torch.distributed", "torch.distributed.elastic.multiprocessing.api", "launcher.bootstrap",
           "launcher.runtime.context"]


def start_worker_server(plan: LaunchPlan) -> None:
    """Start the forkserver that preloads torch, before this process imports torch.

    Its import then overlaps with ours. The server reads the environment once,
    at start, so the plan's thread count is set first.
    """
    if plan.start.method != "forkserver":
        return
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD if plan.start.preload_torch else [])
    from multiprocessing import forkserver

    forkserver.ensure_running()


def stop_worker_server() -> None:
    """Stop the forkserver now rather than let it outlive us holding our stdout.

    SIGKILL: the server holds no state, and its own interpreter shutdown (with
    torch loaded) would cost about 0.5 s. Workers forked from it have exited
    by now; any that had not would follow it through their parent-death signal.
    """
    from multiprocessing import forkserver

    server: Any = getattr(forkserver, "_forkserver", None)
    pid = getattr(server, "_forkserver_pid", None)
    if server is None or not pid:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    server._stop()


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


def run_plan(plan: LaunchPlan) -> RunResult:
    """Start the workers of ``plan``, wait for them, and say how it went."""
    started = time.monotonic()
    start_worker_server(plan)
    private_dir = None if plan.log_dir else tempfile.mkdtemp(prefix="launcher-")
    try:
        result = _run_agent(plan, plan.log_dir or str(private_dir))
    finally:
        stop_worker_server()
        if private_dir is not None:
            shutil.rmtree(private_dir, ignore_errors=True)
    return RunResult(
        return_values=result[0],
        failures=result[1],
        wall_time=time.monotonic() - started,
        restarts=result[2],
        log_dir=plan.log_dir,
    )


def _run_agent(plan: LaunchPlan, log_dir: str) -> tuple[dict[int, Any], tuple[RankFailure, ...], int]:
    from torch.distributed.elastic.agent.server.api import WorkerSpec
    from torch.distributed.elastic.multiprocessing import Std

    from launcher.agent import LauncherAgent, RunLogsSpecs
    from launcher.rendezvous import handler_for

    quiet_engine_logs(os.environ)
    world = plan.config.world
    rdzv = plan.rendezvous
    handler = handler_for(
        rdzv.backend,
        rdzv.endpoint.replace("<chosen at launch>", "0"),
        rdzv.run_id,
        rdzv.min_nodes,
        rdzv.max_nodes,
        world.local_addr,
        dict(rdzv.conf),
    )
    payload = WorkerPayload(
        target=plan.target,
        args=plan.target_args,
        config=plan.config,
        start_method=plan.start.method,
        kwargs=dict(plan.config.kwargs),
        env=worker_environment(plan),
    )
    from launcher.bootstrap import run_worker

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
    logs = RunLogsSpecs(
        log_dir=log_dir,
        redirects=Std.from_str(plan.config.logs.redirects),
        tee=Std.from_str(plan.config.logs.tee),
        local_ranks_filter=_ranks_filter(plan.config.logs.local_ranks_filter),
    )
    os.environ["TORCHELASTIC_SIGNALS_TO_HANDLE"] = world.signals_to_handle
    agent = LauncherAgent(
        spec=spec,
        logs_specs=logs,
        start_method=plan.start.method,
        grace_period=world.shutdown_timeout,
        wait_interval=world.monitor_interval,
    )
    try:
        outcome = agent.run()
    finally:
        handler.shutdown()
    restarts = world.max_restarts - agent.remaining_restarts
    if not outcome.is_failed():
        return dict(outcome.return_values), (), restarts
    attempt = restarts
    failures = sorted(
        (
            _to_rank_failure(rank, f, agent.exit_times.get((attempt, f.local_rank)),
                             (attempt, f.local_rank) in agent.stopped_ranks)
            for rank, f in outcome.failures.items()
        ),
        key=lambda f: f.timestamp,
    )
    return {}, tuple(failures), restarts


def _ranks_filter(text: str) -> set[int] | None:
    ranks = {int(r) for r in text.split(",") if r.strip()}
    return ranks or None


def _to_rank_failure(rank: int, failure: ProcessFailure, seen_at: float | None, stopped: bool) -> RankFailure:
    exitcode: int | None = failure.exitcode
    signal_name = None
    if exitcode is not None and exitcode < 0:
        try:
            signal_name = signal.Signals(-exitcode).name
        except ValueError:
            signal_name = f"signal {-exitcode}"
        exitcode = None
    message, trace, raised_at = _read_error(failure.error_file_data)
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
