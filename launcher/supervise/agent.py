"""Elastic's LocalElasticAgent with the launcher's process-stopping policy.

Subclassed, not copied. What changes:
- the agent waits on worker exits (a failure is seen when it happens, not at the next poll);
- every rank hands its return value back on one shared pipe (``launcher.returns``): a worker
  holds one fd for it, not elastic's two per rank of the group;
- when a rank fails, the others are stopped at once: SIGTERM to each worker's process group, the
  plan's grace period, then SIGKILL to every group (DataLoader workers included); a second signal
  to the launcher skips the grace period; every failed rank is reported, not only the first;
- the hang watchdog: a rank without progress (output, ``ctx.step()``, loader iterations) for the
  timeout gets every rank's stacks dumped (SIGUSR1 → faulthandler → the rank's stacks file) and shown,
  the rank the others wait for named (``stacks.py``), and the job stopped;
- after every attempt, what its ranks left running outside their process groups is stopped too
  (``descendants.Strays``: a daemon a rank started);
- when the reader of the console goes away (``| head``: the router saw EPIPE), the job is stopped as
  after a failure, and never restarted for it: ``ConsoleClosed`` ends elastic's run, which stops the workers;
- the rendezvous (waiting for the other nodes) runs in a thread that a stop signal does not wait for,
  and fails as one line after the join timeout (``rendezvous.guarded``); so does the exit barrier
  (waiting for the other nodes' workers to finish);
- save and stop: a request the agent's process received is set in the store of every rendezvous round
  (``save_stop.py``);
- several nodes (an elastic rendezvous): each round's nodes and their ranks are known (``membership.py``);
  a node that leaves the round while the ranks run (its keep-alive stopped: it died, or its launcher was
  killed) stops the workers and the job re-forms with the nodes left, as after a failure, naming it; the
  workers' store is a new one each round (``compat.elastic.renew_worker_store``);
- per-rank files live at ``<log dir>/attempt_<n>/<local rank>/`` (no torchelastic_* dir in /tmp),
  with FIFOs that route worker output through the launcher (``output.py``).
What it reads of elastic beyond the template methods goes through ``launcher.compat.elastic``; where
that probe fails (``own_monitoring=False``), monitoring and stopping stay elastic's own.
Imports torch: launch side.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing.connection
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from torch.distributed.elastic.agent.server.api import RunResult, WorkerGroup, WorkerState
from torch.distributed.elastic.agent.server.local_elastic_agent import LocalElasticAgent
from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, ProcessFailure
from torch.distributed.elastic.multiprocessing.api import LogsDest, SignalException

from launcher import trace
from launcher.compat import elastic, mp
from launcher.interruptible import call_interruptibly
from launcher.plan.model import HangPlan, OutputPlan, RendezvousPlan
from launcher.protocol import PROGRESS_FILE, STACKS_FILE, main_thread_ident
from launcher.result import LostNode, RankFailure, Restart
from launcher.supervise.descendants import Strays
from launcher.supervise.failures import ended_by_the_stop, process_failure, rank_failures
from launcher.supervise.membership import Round, gone, joined, round_of
from launcher.supervise.output import OutputRouter
from launcher.supervise.reaper import KILL, signal_group
from launcher.supervise.rendezvous import guarded
from launcher.supervise.save_stop import SaveAndStop
from launcher.supervise.stacks import console_lines, holding_up, main_thread_stack, wait_for_dumps

RECENT_EXIT = 5.0  # seconds: a group whose leader exited this recently is still the worker's
STACKS_LIMIT = 3.0  # seconds: the longest wait for every rank's stacks
EXIT_BARRIER_MARGIN = 5.0  # seconds beyond elastic's own timeout of the exit barrier: it gives up first


class WorkerWatcher(Protocol):
    """Told the pid of every worker as it starts: the reaper, or a channel to the launcher that feeds it."""

    def watch(self, pids: list[int]) -> None: ...


class RunLogsSpecs(DefaultLogsSpecs):
    """Per-rank files at ``<log_dir>/attempt_<n>/<local_rank>/``, and the output FIFOs of each attempt."""

    def __init__(self, log_dir: str, router: OutputRouter | None) -> None:
        super().__init__(log_dir=log_dir)  # no redirects: the router owns worker output
        self._router = router
        self.error_files: dict[int, str] = {}  # of the latest attempt, by local rank; each in its rank's folder

    def _make_log_dir(self, log_dir: str | None, rdzv_run_id: str) -> str:
        assert log_dir is not None  # the supervisor always passes one
        os.makedirs(log_dir, exist_ok=True)
        return log_dir

    def reify(self, envs: dict[int, dict[str, str]]) -> LogsDest:
        if self._run_log_dir and envs:  # a round that re-forms without a restart (a node joined) keeps its attempt
            keep_earlier_round(os.path.join(self._run_log_dir, f"attempt_{envs[0]['TORCHELASTIC_RESTART_COUNT']}"))
        dest = super().reify(envs)
        self.error_files = dict(dest.error_files)
        if self._router is not None:
            for local_rank, error_file in dest.error_files.items():
                self._router.attach(local_rank, int(envs[local_rank]["RANK"]), os.path.dirname(error_file))
        return dest


def keep_earlier_round(attempt_dir: str) -> None:
    """Move an attempt's folder aside to ``attempt_N.K`` (the first K free) before elastic empties it.

    Elastic removes ``attempt_N`` when it starts workers for attempt N; a rendezvous that re-forms to
    admit a node starts them again with the same N, which would delete the earlier round's logs.
    """
    if not os.path.isdir(attempt_dir):
        return
    for round_number in itertools.count(1):
        aside = f"{attempt_dir}.{round_number}"
        if not os.path.exists(aside):
            os.rename(attempt_dir, aside)
            return


class ConsoleClosed(Exception):
    """The reader of the launcher's stdout or stderr went away. Raised out of elastic's run(), which stops the workers.

    ``outcome``: the failed attempt whose restart this prevented, else None (the job was running).
    """

    def __init__(self, stream: str, outcome: RunResult | None = None) -> None:
        super().__init__(f"the reader of {stream} went away")
        self.stream = stream
        self.outcome = outcome


@dataclass(frozen=True)
class HangReport:
    local_rank: int  # the rank that holds up the job (see ``stacks.holding_up``)
    rank: int
    idle: float  # seconds since the last progress of the rank the watchdog first found idle (or since start)
    stack: tuple[str, ...] = ()  # the main thread's frames of the rank named, most recent call first
    waiting: tuple[int, ...] = ()  # global ranks whose stacks showed them waiting in a collective


class LauncherAgent(LocalElasticAgent):
    def __init__(self, *, grace_period: float, wait_interval: float, logs: RunLogsSpecs,
                 router: OutputRouter | None, watcher: WorkerWatcher, hang: HangPlan | None,
                 output: OutputPlan | None,
                 on_restart: Callable[[Restart], None],
                 on_reform: Callable[[Round, tuple[LostNode, ...], tuple[str, ...]], None] | None = None,
                 own_monitoring: bool = True,
                 strays: Strays | None = None, save_stop: SaveAndStop | None = None,
                 rendezvous: RendezvousPlan | None = None, **kwargs: Any) -> None:
        super().__init__(logs_specs=logs, **kwargs)
        self._own_monitoring = own_monitoring
        self._grace_period = grace_period
        self._rendezvous_plan = rendezvous
        self._wait_interval = wait_interval
        self._logs = logs
        self._router = router
        self._watcher = watcher
        self._hang = hang
        self._output = output
        self._on_restart = on_restart
        self._on_reform = on_reform  # told the new round's nodes, those that left and those that joined
        self._round: Round | None = None  # the nodes of the current round of a dynamic (c10d) rendezvous
        self.lost_nodes: tuple[LostNode, ...] = ()  # nodes that left the current attempt's round
        self._missing_since: dict[tuple[str, int], float] = {}  # nodes of the round not seen, since when
        self._strays = strays  # stopped after every attempt: what its ranks left running
        self._save_stop = save_stop
        self._attempt_started = time.time()
        self._last_failures: dict[int, ProcessFailure] = {}
        self.exit_times: dict[tuple[int, int], float] = {}  # (attempt, local rank) → when its exit was seen
        self.stopped_ranks: set[tuple[int, int]] = set()  # (attempt, local rank) stopped by the launcher
        self.stop_times: dict[int, float] = {}  # attempt → when the launcher began to stop its workers
        self.hang_report: HangReport | None = None

    @property
    def remaining_restarts(self) -> int:
        return self._remaining_restarts

    def attempt(self) -> int:
        return self._worker_group.spec.max_restarts - self._remaining_restarts

    def _processes(self) -> list[Any]:
        return elastic.worker_processes(self._pcontext)

    # -- watching -----------------------------------------------------------

    def _rendezvous(self, worker_group: WorkerGroup) -> None:
        trace.mark("agent: rendezvous start")
        # Let go of the previous round's store: the rendezvous serves a fresh one on the same port,
        # which it can bind only once the old server stopped (see launcher.supervise.rendezvous).
        worker_group.store = None
        self._store = None
        elastic.renew_worker_store(worker_group.spec.rdzv_handler)
        before = self._round
        meet = super()._rendezvous
        if self._rendezvous_plan is None:
            meet(worker_group)
        else:  # waits for the other nodes: a stop signal must not wait with it
            guarded(self._rendezvous_plan, lambda: meet(worker_group))
        self._round = self._read_round(worker_group)
        if before is not None and self._round is not None and self._on_reform is not None:
            self._on_reform(self._round, gone(before, self._round.nodes), joined(before, self._round))
        trace.mark("agent: rendezvous end")

    def _exit_barrier(self) -> None:
        if self._save_stop is not None:  # while the node serving the workers' store waits here too
            self._save_stop.read_stopped(self._worker_group)
        # Elastic waits here, in torch's C++, up to 300 s for the other nodes' workers to finish: a stop
        # signal must not wait with it (rendezvous.guarded's reason). Elastic only logs a barrier that fails.
        with contextlib.suppress(TimeoutError):
            call_interruptibly(super()._exit_barrier, self._exit_barrier_timeout + EXIT_BARRIER_MARGIN,
                               "exit barrier")

    def _read_round(self, worker_group: WorkerGroup) -> Round | None:
        """This round's nodes and their ranks, for a dynamic rendezvous; else None."""
        nodes = elastic.round_nodes(worker_group.spec.rdzv_handler)
        if nodes is None or worker_group.group_world_size is None:
            return None
        sizes = elastic.local_world_sizes(worker_group.store, worker_group.group_world_size)
        return round_of(nodes, sizes or [worker_group.spec.local_world_size] * worker_group.group_world_size)

    def _left_round(self) -> tuple[LostNode, ...]:
        """The nodes of this round that the rendezvous has not counted for a keep-alive interval (its view is
        synced at least that often): neither in the round nor waiting for the next. A node that leaves the round
        to re-form (a restart, or to admit a node) is waiting a moment later, and elastic re-forms for it."""
        if self._round is None:
            return ()
        handler = self._worker_group.spec.rdzv_handler
        nodes = elastic.round_nodes(handler, waiting=True)
        missing = gone(self._round, nodes) if nodes is not None else ()
        now = time.monotonic()
        self._missing_since = {(n.address, n.pid): self._missing_since.get((n.address, n.pid), now) for n in missing}
        patience = elastic.keep_alive_interval(handler)
        return tuple(n for n in missing if now - self._missing_since[(n.address, n.pid)] >= patience)

    def _start_workers(self, worker_group: WorkerGroup) -> dict[int, Any]:
        trace.mark("agent: start workers start")
        self._attempt_started = time.time()
        self.hang_report = None
        self.lost_nodes = ()
        self._missing_since = {}
        # Every rank's return value on one pipe (launcher.returns); under fork, no worker keeps its siblings' pipes.
        with elastic.shared_returns(), mp.sibling_pipes_closed():
            pids: dict[int, Any] = super()._start_workers(worker_group)
        self._watcher.watch([int(pid) for pid in pids.values()])
        trace.mark("agent: start workers end")
        return pids

    def _monitor_workers(self, worker_group: WorkerGroup) -> RunResult:
        if self._save_stop is not None:
            self._save_stop.post(worker_group)
        if not self._own_monitoring:
            self._stop_if_console_closed()
            result: RunResult = super()._monitor_workers(worker_group)
            return result
        processes = self._processes()
        # A worker that succeeded does not exit until its return value is read: wake on that value too,
        # and do not wait at all once every value is in (they may all have come during the last call).
        queues = elastic.return_queues(self._pcontext)
        missing = {elastic.queue_reader(queue) for queue in queues.values() if queue.empty()}  # one, when shared
        waitables: list[Any] = [p.sentinel for p in processes if p.exitcode is None] + list(missing)
        if waitables and (missing or not queues):
            closed = [self._router.closed_console_fd()] if self._router is not None else []
            multiprocessing.connection.wait(waitables + closed, timeout=self._wait_interval)
        self._stop_if_console_closed()
        self._note_exits(processes)
        if any(p.exitcode not in (None, 0) for p in processes):
            return self._fail_fast(worker_group, processes)
        lost = self._left_round()
        if lost:  # its ranks will never answer: stop ours, and re-form with the nodes left (or end)
            self.lost_nodes = lost
            return self._fail_fast(worker_group, processes)
        if self._hang is not None:
            hung = self._hung_rank(worker_group, processes)
            if hung is not None:
                return self._stop_hung(worker_group, processes, hung)
        if any(queue.empty() for queue in queues.values()):  # some worker has not handed back its value yet
            return RunResult(state=WorkerState.HEALTHY)
        # Every worker has handed back its return value: elastic collects them. It never sees a
        # failure first, which it would handle with a fixed 30 s grace and report alone.
        trace.mark("agent: every worker returned")
        result = super()._monitor_workers(worker_group)
        return result

    def _stop_if_console_closed(self) -> None:
        """Raise ``ConsoleClosed`` once the router found a console's reader gone: elastic's run() stops the workers
        on its way out (``_shutdown``: SIGTERM, the grace period, SIGKILL, as after a failure) and restarts none."""
        if self._router is not None and self._router.closed_console is not None:
            raise ConsoleClosed(self._router.closed_console)

    def _note_exits(self, processes: list[Any]) -> None:
        now = time.time()
        for local_rank, process in enumerate(processes):
            if process.exitcode is not None:
                self.exit_times.setdefault((self.attempt(), local_rank), now)

    def _rank_file(self, local_rank: int, name: str) -> str | None:
        """A file in the rank's folder, next to its error file (``launcher.protocol``)."""
        error_file = self._logs.error_files.get(local_rank)
        return os.path.join(os.path.dirname(error_file), name) if error_file else None

    def _last_progress(self, local_rank: int) -> float | None:
        times = []
        if self._router is not None and (output := self._router.last_output(local_rank)) is not None:
            times.append(output)
        progress_file = self._rank_file(local_rank, PROGRESS_FILE)
        if progress_file:
            with contextlib.suppress(OSError):
                times.append(os.stat(progress_file).st_mtime)
        return max(times, default=None)

    def _hung_rank(self, worker_group: WorkerGroup, processes: list[Any]) -> HangReport | None:
        assert self._hang is not None
        now = time.time()
        for local_rank, process in enumerate(processes):
            if process.exitcode is not None:
                continue
            last = self._last_progress(local_rank)  # the start-up allowance holds until the first progress
            deadline = self._attempt_started + self._hang.startup if last is None else last + self._hang.timeout
            if now > deadline:
                idle = now - (last or self._attempt_started)
                return HangReport(local_rank, worker_group.workers[local_rank].global_rank, idle)
        return None

    # -- stopping -----------------------------------------------------------

    def _stop_processes(self, processes: list[Any], first_signal: signal.Signals) -> dict[int, set[int]]:
        """SIGTERM (or the given signal) to every group, the grace period, then SIGKILL to every group.
        Returns the signals sent to each local rank that was running."""
        alive = [i for i, p in enumerate(processes) if p.exitcode is None]
        sent = {i: {int(first_signal)} for i in alive}
        for i in alive:
            signal_group(processes[i].pid, first_signal)
        deadline = time.monotonic() + self._grace_period
        try:
            while alive and (left := deadline - time.monotonic()) > 0:
                multiprocessing.connection.wait([processes[i].sentinel for i in alive], timeout=left)
                alive = [i for i in alive if processes[i].exitcode is None]
        except SignalException:
            pass  # asked again (a second Ctrl-C): no more grace
        for i in alive:  # the grace ran out: SIGKILL below
            sent[i].add(int(KILL))
        self._note_exits(processes)
        now = time.time()
        for local_rank, process in enumerate(processes):  # leftovers of each group: DataLoader workers...
            # Only groups whose leader ended moments ago: pids are reused (pid_max may be 32768), and an
            # old, empty group's number may by now lead someone else's processes.
            if now - self.exit_times.get((self.attempt(), local_rank), now) < RECENT_EXIT:
                signal_group(process.pid, KILL)
        for process in processes:
            process.join(timeout=5)
        return sent

    def _fail_fast(self, worker_group: WorkerGroup, processes: list[Any]) -> RunResult:
        """One rank failed: stop the others now, and report every rank that did not succeed."""
        assert self._pcontext is not None
        self.stop_times.setdefault(self.attempt(), time.time())  # a rank that raised before this failed on its own
        sent = self._stop_processes(processes, signal.SIGTERM)
        self._note_exits(processes)
        # Not a rank that died of a signal the launcher did not send: it ended on its own, only not yet reaped
        # when the stop began (a SIGKILLed process is torn down while its peers already see it gone).
        self.stopped_ranks |= {(self.attempt(), i) for i, signals in sent.items()
                               if ended_by_the_stop(processes[i].exitcode, signals)}
        failures = {
            worker_group.workers[i].global_rank: process_failure(i, p.pid, p.exitcode, self._pcontext.error_files[i])
            for i, p in enumerate(processes)
            if p.exitcode not in (None, 0)
        }
        self._last_failures = failures
        return RunResult(state=WorkerState.FAILED, failures=failures)

    def _stop_hung(self, worker_group: WorkerGroup, processes: list[Any], hung: HangReport) -> RunResult:
        """Dump and show every rank's stacks, name the rank that holds up the others, stop the job as failed."""
        dumps = self._dump_stacks(processes)
        ranks = {w.local_rank: w.global_rank for w in worker_group.workers}
        for local_rank, (_, dump) in sorted(dumps.items()):
            if dump and self._output is not None and _stderr_on_console(self._output, local_rank):
                with contextlib.suppress(OSError, ValueError):  # a console that went away
                    print(console_lines(ranks[local_rank], dump), end="", file=sys.stderr, flush=True)
        main_stacks = {local_rank: main_thread_stack(dump, main) for local_rank, (main, dump) in dumps.items()}
        progress = {local_rank: self._last_progress(local_rank) or self._attempt_started for local_rank in dumps}
        blame = holding_up(hung.local_rank, main_stacks, progress)
        self.hang_report = HangReport(blame.local_rank, ranks[blame.local_rank], hung.idle,
                                      main_stacks.get(blame.local_rank, ()), tuple(ranks[i] for i in blame.waiting))
        return self._fail_fast(worker_group, processes)

    def _dump_stacks(self, processes: list[Any]) -> dict[int, tuple[int | None, str]]:
        """SIGUSR1 to every live rank; what each then wrote to its stacks file, with its main thread's ident."""
        usr1 = getattr(signal, "SIGUSR1", None)
        files = {i: path for i, p in enumerate(processes)
                 if p.exitcode is None and (path := self._rank_file(i, STACKS_FILE)) and os.path.exists(path)}
        if usr1 is None or not files:
            return {}
        before = {i: os.path.getsize(path) for i, path in files.items()}
        for i in files:
            with contextlib.suppress(ProcessLookupError):
                os.kill(processes[i].pid, usr1)
        wait_for_dumps(files, before, STACKS_LIMIT)
        return {i: _read_stacks(path, before[i]) for i, path in files.items()}

    def _stop_workers(self, worker_group: WorkerGroup) -> None:
        if not self._own_monitoring:
            super()._stop_workers(worker_group)
            return
        self._shutdown(signal.SIGTERM)

    def _shutdown(self, death_sig: signal.Signals = signal.SIGTERM, timeout: float | None = None) -> None:
        if not self._own_monitoring:
            super()._shutdown(death_sig, self._grace_period)  # type: ignore[arg-type]
        else:
            if self._pcontext is not None:
                self._stop_processes(self._processes(), signal.SIGTERM)
            super()._shutdown(death_sig, 0)  # type: ignore[arg-type]  # nothing is left to wait for
        if self._strays is not None:  # the workers are gone: what they started and left running goes too
            self._strays.stop()

    def _restart_workers(self, worker_group: WorkerGroup) -> None:
        if self._router is not None and self._router.closed_console is not None:
            # Closed while the failed attempt was being stopped: nobody would read a new one. The job ends
            # with that attempt's failures, and elastic's count of restarts goes back to those that happened.
            self._remaining_restarts += 1
            raise ConsoleClosed(self._router.closed_console,
                                RunResult(state=WorkerState.FAILED, failures=self._last_failures))
        max_restarts = worker_group.spec.max_restarts
        if worker_group.state == WorkerState.HEALTHY:  # elastic saw nodes waiting to join: no restart is counted
            self._on_restart(Restart(self.attempt(), max_restarts))
            super()._restart_workers(worker_group)
            return
        attempt = self.attempt() - 1  # elastic counted this restart already: the attempt that failed
        failures = self.rank_failures(attempt, self._last_failures, {})
        hung = self.hang_report.rank if self.hang_report is not None else None
        self._on_restart(Restart(attempt + 1, max_restarts, failures, self.lost_nodes, hung))
        super()._restart_workers(worker_group)

    def rank_failures(self, attempt: int, failures: Mapping[int, ProcessFailure],
                      last_lines: Mapping[int, tuple[str, ...]]) -> tuple[RankFailure, ...]:
        """An attempt's failed ranks, told apart: failed on their own, lost a peer, or stopped by the launcher."""
        return rank_failures(
            failures,
            stopped={rank: (attempt, f.local_rank) in self.stopped_ranks for rank, f in failures.items()},
            exit_times={rank: t for rank, f in failures.items()
                        if (t := self.exit_times.get((attempt, f.local_rank)))},
            last_lines=last_lines,
            stop_began=self.stop_times.get(attempt),
        )


def _stderr_on_console(output: OutputPlan, local_rank: int) -> bool:
    """Whether the rank's stderr is shown on the console (``--local-ranks-filter``, ``--redirects``)."""
    shown = output.console_ranks is None or local_rank in output.console_ranks
    return shown and (local_rank, "stderr") not in output.hidden


def _read_stacks(path: str, since: int) -> tuple[int | None, str]:
    """The main thread named on a stacks file's first line, and what was written after ``since`` bytes."""
    try:
        with open(path, "rb") as handle:
            header = handle.readline().decode("utf-8", "replace")
            handle.seek(since)
            return main_thread_ident(header), handle.read().decode("utf-8", "replace")
    except OSError:
        return None, ""
