"""Run elastic's agent for a LaunchPlan in this process and return a RunResult.

Elastic does the work (rendezvous, store, worker processes, restarts, error
files). What is ours: an agent that waits on worker exits instead of sleeping
between polls and stops workers with the plan's grace period, worker output
routed through FIFOs, the ranks' metrics records read and rank 0's progress
drawn (``rank_monitor.py``, stopped after the router), and the translation of
elastic's failures into ``RankFailure``s (``failures.py``). This process is the one that hosts the
agent: a child of the torch-preloaded server (``agent_process.py``), or the
launcher itself; its router writes the workers' output to the console, so it
is here that a console whose reader went away is found (``OutputClosed``).
Imports torch inside its functions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from types import FrameType
from typing import TYPE_CHECKING, TypedDict

from launcher import trace
from launcher.errors import HostLimitError
from launcher.plan.model import LaunchPlan
from launcher.protocol import WorkerPayload
from launcher.result import Hang, LostNode, OutputClosed, Restart, RunResult
from launcher.rlimits import open_files_raised
from launcher.supervise.descendants import Strays
from launcher.supervise.failures import process_failure
from launcher.supervise.membership import Round
from launcher.supervise.output import OutputRouter, fifos_supported
from launcher.supervise.rank_monitor import RankMonitor
from launcher.supervise.restart_line import restart_line
from launcher.supervise.run_record import append_event, record_failures
from launcher.supervise.save_stop import SaveAndStop

# Elastic's own return queues (where the probe fails): 2 fds per rank in each worker; multiprocessing's
# forkserver sends a worker at most 251 fds (SCM_RIGHTS carries 253, and it adds its own).
FORKSERVER_RANKS_WITH_ELASTIC_QUEUES = 125

if TYPE_CHECKING:
    from torch.distributed.elastic.agent.server.api import Worker, WorkerGroup
    from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

    from launcher.supervise.agent import WorkerWatcher


def worker_environment(plan: LaunchPlan) -> dict[str, str]:
    """What every worker gets on top of elastic's rank variables.

    Passed in the payload rather than through this process's environment: a
    forkserver child inherits the server's environment, fixed when it started.
    """
    return {
        "OMP_NUM_THREADS": plan.omp_num_threads,
        "TORCHELASTIC_SIGNALS_TO_HANDLE": ",".join(plan.stop.signals),
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


def run_agent_here(plan: LaunchPlan, log_dir: str, watcher: WorkerWatcher, save_stop: SaveAndStop) -> RunResult:
    """``run_agent`` in the launcher's own process (no server to host it): a stop signal that comes before
    elastic's handlers are in place (the workers start) ends the run as theirs would, rather than the
    default action killing the launcher in the middle of its rendezvous, with nothing said and nothing
    cleaned up."""
    from torch.distributed.elastic.multiprocessing.api import SignalException

    main_thread = threading.current_thread() is threading.main_thread()
    numbers = [int(getattr(signal, name)) for name in plan.stop.signals if hasattr(signal, name)]
    previous = {number: signal.signal(number, _raise_signal_exception) for number in numbers if main_thread}
    try:
        return run_agent(plan, log_dir, watcher, save_stop)
    except SignalException as stop:  # before elastic's run() began (connecting to the rendezvous)
        return RunResult(interrupted_by=signal.Signals(stop.sigval).name, log_dir=plan.log_dir)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _raise_signal_exception(number: int, _frame: FrameType | None) -> None:
    from torch.distributed.elastic.multiprocessing.api import SignalException

    raise SignalException(f"process {os.getpid()} got signal {number}", sigval=signal.Signals(number))


def run_agent(plan: LaunchPlan, log_dir: str, watcher: WorkerWatcher,
              save_stop: SaveAndStop | None = None) -> RunResult:
    """Run the plan's workers to the end; ``watcher`` hears every worker pid as it starts; ``save_stop`` is the
    save-and-stop request this process receives."""
    monitor = RankMonitor.for_settings(log_dir, plan.config.monitor)  # the ranks' records, the progress line
    display = monitor.display if monitor is not None else None
    router = OutputRouter(plan.output, display) if fifos_supported() else None
    try:
        if monitor is not None:
            monitor.start()
        result = _run_agent(plan, log_dir, router, watcher, save_stop)
    finally:
        if router is not None:
            router.close()  # drains what is left: the console may be found closed only now
        if monitor is not None:
            monitor.stop()  # after the workers' last output: the final records, the last progress line
    if router is not None and router.closed_console is not None and result.output_closed is None:
        # The job ended on its own, but what it wrote after the reader left was lost: not a success.
        result = dataclasses.replace(result, output_closed=OutputClosed(router.closed_console, stopped_job=False))
    return result


def _run_agent(plan: LaunchPlan, log_dir: str, router: OutputRouter | None, watcher: WorkerWatcher,
               save_stop: SaveAndStop | None) -> RunResult:
    from torch.distributed.elastic.agent.server.api import WorkerSpec
    from torch.distributed.elastic.multiprocessing.api import SignalException

    from launcher.bootstrap import run_worker
    from launcher.compat import elastic
    from launcher.supervise.agent import ConsoleClosed, LauncherAgent, RunLogsSpecs
    from launcher.supervise.rendezvous import guarded, handler_for

    quiet_engine_logs(os.environ)
    world = plan.config.world
    missing = elastic.probe()
    if missing:
        print(f"launcher: warning: this torch lacks what the launcher's agent reads of elastic: {', '.join(missing)}; "
              "elastic's own monitoring is used: failures are seen at the next poll and stopped after elastic's grace "
              "period, and there is no hang watchdog", file=sys.stderr, flush=True)
        if plan.start.method == "forkserver" and plan.nprocs > FORKSERVER_RANKS_WITH_ELASTIC_QUEUES:
            raise HostLimitError(
                f"world.nprocs: {plan.nprocs} local processes: with this torch, elastic sends every worker two fds "
                f"per rank, and the forkserver passes at most {FORKSERVER_RANKS_WITH_ELASTIC_QUEUES} ranks' worth",
                f"use --start-method spawn, or at most {FORKSERVER_RANKS_WITH_ELASTIC_QUEUES} processes per node")
    # This node's address as the others reach it (elastic's default, the host's FQDN, may not resolve there).
    local_addr = world.local_addr or (plan.network.local_address if plan.network is not None else None)
    handler = guarded(plan.rendezvous, lambda: handler_for(plan.rendezvous, local_addr), connecting=True)
    payload = WorkerPayload(target=plan.target, args=plan.target_args, config=plan.config, backend=plan.backend,
                            start_method=plan.start.method, kwargs=dict(plan.config.kwargs),
                            env=worker_environment(plan), open_files_limit=plan.limits.open_files_soft)
    spec = WorkerSpec(
        role=world.role,
        local_world_size=plan.nprocs,
        entrypoint=run_worker,
        args=(payload,),
        rdzv_handler=handler,
        max_restarts=world.max_restarts,
        monitor_interval=world.monitor_interval if missing else 1e-6,  # ours waits on exits: see LauncherAgent
        local_addr=local_addr,
    )
    logs = RunLogsSpecs(log_dir, router)
    strays = _strays(plan)
    agent = LauncherAgent(
        spec=spec,
        logs=logs,
        router=router,
        watcher=watcher,
        strays=strays,
        hang=None if missing else plan.hang,
        output=plan.output,
        own_monitoring=not missing,
        on_restart=lambda restart: _report_restart(restart, log_dir if plan.log_dir else None, router),
        on_reform=lambda new, left, joined: _report_reform(new, left, joined, router),
        start_method=plan.start.method,
        grace_period=plan.stop.grace_period,
        wait_interval=world.monitor_interval,
        save_stop=save_stop,
        rendezvous=plan.rendezvous,
    )
    interrupted = closed = stopped = None
    try:
        with process_environment(worker_environment(plan)), open_files_raised():  # fds per rank: plan/limits.py
            outcome = agent.run()
            trace.mark("agent: run end")
        if save_stop is not None and not outcome.is_failed():
            stopped = save_stop.stopped  # read by the agent before elastic's exit barrier
    except SignalException as stop:
        interrupted, outcome = signal.Signals(stop.sigval).name, None
    except ConsoleClosed as stop:  # the workers were stopped on the way out of elastic's run()
        closed, outcome = stop.stream, stop.outcome
    finally:
        if interrupted is None:  # as torchrun: a node stopped by a signal leaves the rendezvous open to the others
            handler.shutdown()
        if strays is not None:
            strays.close()
    restarts = world.max_restarts - agent.remaining_restarts
    ran = _world_of(agent.get_worker_group())
    if interrupted is not None:
        return RunResult(interrupted_by=interrupted, restarts=restarts, log_dir=plan.log_dir, **ran)
    if closed is not None and outcome is None:  # stopped for it; run_agent says so of a job that ended anyway
        return RunResult(output_closed=OutputClosed(closed, stopped_job=True), restarts=restarts, log_dir=plan.log_dir,
                         **ran)
    if outcome is None:  # pragma: no cover - elastic returns an outcome or raises
        raise RuntimeError("elastic's agent returned no outcome")
    if not outcome.is_failed():
        return RunResult(return_values=dict(outcome.return_values), restarts=restarts, log_dir=plan.log_dir,
                         stopped_after_checkpoint=stopped, **ran)

    def lines(local_rank: int) -> tuple[str, ...]:
        return router.last_lines(local_rank) if router is not None else ()

    failed = dict(outcome.failures)
    if missing:  # elastic's own monitoring reports the first failed rank its poll found: add every rank that raised
        failed.update(_ranks_that_raised(agent.get_worker_group().workers, logs.error_files, failed))
    failures = agent.rank_failures(restarts, failed, {rank: lines(f.local_rank) for rank, f in failed.items()})
    hang = None
    if agent.hang_report is not None and plan.hang is not None:
        report = agent.hang_report
        hang = Hang(report.rank, report.local_rank, report.idle, plan.hang.timeout, lines(report.local_rank),
                    report.stack, report.waiting)
    return RunResult(failures=failures, hang=hang, restarts=restarts, log_dir=plan.log_dir,
                     lost_nodes=agent.lost_nodes, **ran)


class _World(TypedDict):
    world_size: int
    nodes: int


def _world_of(group: WorkerGroup) -> _World:
    """How many ranks and nodes the last attempt had, as ``RunResult`` fields; zeros before a rendezvous."""
    world_size = group.workers[0].world_size if group.workers else -1
    if world_size < 0 or group.group_world_size is None:
        return _World(world_size=0, nodes=0)
    return _World(world_size=world_size, nodes=group.group_world_size)


def _strays(plan: LaunchPlan) -> Strays | None:
    """Linux: what finds the processes ranks leave behind (``descendants.py``), under the process that forks
    the workers: the forkserver (a subreaper from its start: ``preload.py``; the agent is spared), or this one."""
    if not sys.platform.startswith("linux"):
        return None
    if plan.start.method == "forkserver":
        from launcher.compat import mp

        server = mp.forkserver_pid() or mp.parent_server_pid()
        return Strays(server, spare=[os.getpid()]) if server is not None else None
    return Strays.of_this_process()


def _ranks_that_raised(workers: list[Worker], error_files: Mapping[int, str],
                       reported: Mapping[int, ProcessFailure]) -> dict[int, ProcessFailure]:
    """Ranks not in ``reported`` that wrote an error file: each raised, and the bootstrap then exits 1."""
    found = {}
    for worker in workers:
        path = error_files.get(worker.local_rank)
        if worker.global_rank not in reported and path and os.path.exists(path):
            found[worker.global_rank] = process_failure(worker.local_rank, worker.id or 0, 1, path)
    return found


def _report_restart(restart: Restart, log_dir: str | None, router: OutputRouter | None) -> None:
    """The restart line (``restart_line.py``); the new attempt's folder when the user keeps the logs."""
    attempt_dir = os.path.join(log_dir, f"attempt_{restart.number}") if log_dir and restart.counted else None
    line = restart_line(restart, attempt_dir)
    if log_dir:
        record_failures(log_dir, restart.failures)
        append_event(log_dir, "restart", number=restart.number, counted=restart.counted, why=line)
    _say(f"launcher: {line}", router)


def _report_reform(new: Round, left: tuple[LostNode, ...], joined: tuple[str, ...],
                   router: OutputRouter | None) -> None:
    """After a new rendezvous round of several nodes: its size, and which nodes left or joined."""
    changes = [f"without node {node.address} (ranks {', '.join(map(str, node.ranks))})" for node in left]
    changes += [f"with node {address} new" for address in joined]
    if changes:
        _say(f"launcher: the job re-formed {', '.join(changes)}: {new.world_size} rank(s) on {len(new.nodes)} "
             "node(s)", router)


def _say(line: str, router: OutputRouter | None) -> None:
    """A line on stderr, above the progress bar where the router keeps one."""
    with contextlib.suppress(OSError):  # a closed stderr is noticed on the workers' output (output.py), not here
        if router is not None:
            router.say(line)
        else:
            print(line, file=sys.stderr, flush=True)


def quiet_engine_logs(environ: Mapping[str, str]) -> None:
    """Elastic logs every failure with its own traceback; the launcher's summary replaces that.

    ``LOGLEVEL`` (torchrun's variable) keeps elastic's logs as they are.
    """
    if "LOGLEVEL" in environ:
        return
    for name in list(logging.root.manager.loggerDict):
        if name.startswith(("torch.distributed.elastic", "torch.multiprocessing")):
            logging.getLogger(name).setLevel(logging.CRITICAL)
