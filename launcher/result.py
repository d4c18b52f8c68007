"""Typed outcomes of a run: ``RunResult``, the ``RankFailure`` behind it, and ``JobFailed``.

The supervisor builds these from elastic's ``ProcessFailure``s; the CLI turns
them into a summary and an exit code; the Python API raises ``JobFailed``.
Never imports torch.
"""

from __future__ import annotations

import signal as signals
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from launcher.errors import EXIT_BROKEN_PIPE, EXIT_FAILED, EXIT_HANG, EXIT_OK, EXIT_STOPPED, exit_code_for


def signal_number(name: str | None) -> int | None:
    """``"SIGHUP"`` → 1 on this platform; None for no name or one this platform does not have."""
    return int(getattr(signals, name)) if name and name.startswith("SIG") and hasattr(signals, name) else None


@dataclass(frozen=True)
class RankFailure:
    """How one rank ended, as far as the launcher could see."""

    rank: int
    local_rank: int
    host: str
    pid: int
    exitcode: int | None  # None when killed by a signal
    signal: str | None  # "SIGKILL"
    timestamp: float  # seconds since the epoch, sub-second
    message: str | None  # "ValueError: bad input", as raised in the worker
    traceback: str | None
    last_lines: tuple[str, ...] = ()
    stopped_by_launcher: bool = False  # still running when another rank failed
    peer_gone: bool = False  # its exception came out of a collective: a peer's failure, seen from its side

    @property
    def signal_number(self) -> int | None:
        return signal_number(self.signal)

    def how(self) -> str:
        if self.stopped_by_launcher:
            return f"stopped by the launcher ({self.signal or f'exit code {self.exitcode}'})"
        return f"killed by {self.signal}" if self.signal else f"exit code {self.exitcode}"

    def describe(self) -> str:
        what = f": {self.message}" if self.message else ""
        return f"rank {self.rank} (local {self.local_rank} on {self.host}, pid {self.pid}) {self.how()}{what}"


@dataclass(frozen=True)
class LostNode:
    """A node that left the job's rendezvous while its ranks ran, and is not waiting for the next round:
    its keep-alive stopped (it died, or its launcher was killed)."""

    address: str  # as the rendezvous knows it (--local-addr, else its name)
    pid: int  # its agent's process
    ranks: tuple[int, ...]  # its global ranks in the round it left

    def describe(self) -> str:
        ranks = ", ".join(map(str, self.ranks))
        return f"node {self.address} (rank{'s' if len(self.ranks) != 1 else ''} {ranks}) left the rendezvous"


@dataclass(frozen=True)
class Restart:
    """Why the launcher restarts the workers. ``number`` counts restarts from 1 and is the new attempt's
    ``TORCHELASTIC_RESTART_COUNT`` and its folder ``attempt_<number>`` (the first attempt is ``attempt_0``)."""

    number: int
    max_restarts: int
    failures: tuple[RankFailure, ...] = ()  # the failed attempt's ranks, classified as in a RunResult
    lost_nodes: tuple[LostNode, ...] = ()
    hung_rank: int | None = None  # the rank the hang watchdog found holding up the job

    @property
    def counted(self) -> bool:
        """False for a re-form that admits a node waiting to join: elastic counts no restart for it."""
        return bool(self.failures or self.lost_nodes)


@dataclass(frozen=True)
class Hang:
    """The rank that held up a job that made no progress for longer than the hang timeout."""

    rank: int
    local_rank: int
    idle: float  # the job made no progress for this long (seconds)
    timeout: float
    last_lines: tuple[str, ...] = ()
    stack: tuple[str, ...] = ()  # the rank's main thread, most recent call first (faulthandler's lines)
    waiting: tuple[int, ...] = ()  # ranks seen waiting for it in a collective


@dataclass(frozen=True)
class OutputClosed:
    """The reader of the launcher's stdout or stderr went away (a pipe like ``| head``) while workers wrote to it."""

    stream: str  # "stdout" or "stderr": the first of the two found closed
    stopped_job: bool  # the launcher stopped the job for it; False: the job had ended, only its output was lost

    def describe(self) -> str:
        what = "stopped the job" if self.stopped_job else "the job's later output was not shown"
        return f"{self.stream} was closed by its reader (a pipe like `| head`): {what}"


@dataclass(frozen=True)
class RunResult:
    """What a run produced: per-rank return values, or the failures, and how long it took."""

    return_values: Mapping[int, Any] = field(default_factory=dict)
    failures: tuple[RankFailure, ...] = ()  # earliest first
    wall_time: float = 0.0
    restarts: int = 0
    log_dir: str | None = None
    interrupted_by: str | None = None  # "SIGINT" / "SIGTERM" received by the launcher
    hang: Hang | None = None  # the watchdog stopped the job
    output_closed: OutputClosed | None = None  # the console's reader went away: exit 141, unless a rank failed
    stopped_after_checkpoint: int | None = None  # the step every rank saved before stopping, as asked
    lost_nodes: tuple[LostNode, ...] = ()  # nodes that left while the last attempt ran: the job's end
    world_size: int = 0  # ranks of the last attempt, every node's; 0: no attempt started
    nodes: int = 0  # nodes of the last attempt

    @property
    def ok(self) -> bool:
        return (not self.failures and self.interrupted_by is None and self.hang is None
                and self.output_closed is None and not self.lost_nodes)

    @property
    def root_cause(self) -> RankFailure | None:
        """The earliest failure of a rank that was not stopped by the launcher, preferring one that did not
        come out of a collective (such a rank may raise before the launcher even sees its peer crash)."""
        own = [f for f in self.failures if not f.stopped_by_launcher]
        # After a node left, ranks the launcher stopped for it are not a cause: the node is.
        first_hand = [f for f in own if not f.peer_gone] or own or ([] if self.lost_nodes else list(self.failures))
        return first_hand[0] if first_hand else None

    @property
    def exit_code(self) -> int:
        if self.interrupted_by is not None:  # 128 + the signal, as a shell reports it: 130, 143, 129 (SIGHUP)
            return exit_code_for(None, signal_number(self.interrupted_by) or int(signals.SIGTERM))
        if self.hang is not None:
            return EXIT_HANG
        root = self.root_cause
        if root is not None:  # a rank that failed on its own says more than the output's reader leaving
            return exit_code_for(root.exitcode, root.signal_number)
        if self.output_closed is not None:
            return EXIT_BROKEN_PIPE
        if self.lost_nodes:
            return EXIT_FAILED
        return EXIT_OK if self.stopped_after_checkpoint is None else EXIT_STOPPED


class JobFailed(Exception):
    """Raised by ``launcher.launch`` when a rank failed; carries the result."""

    def __init__(self, result: RunResult) -> None:
        root = result.root_cause
        closed = result.output_closed
        super().__init__(root.describe() if root is not None else closed.describe() if closed is not None
                         else "the job failed")
        self.result = result
        self.root_cause = root
