"""What the ranks of a ``distributed`` test did, read from their folders, and the verdict pytest reports.

The verdict names the rank whose failure came first (its own, not one raised
in a collective because a peer went away), shows it as pytest would have, and
says in one line what each other rank did: passed, failed (with its message),
died (with the signal), or stopped by the plugin (with its Python stacks). A
test that timed out shows every running rank's stacks.

Pure file and text work: no pytest, no torch.
"""

from __future__ import annotations

import os
import pickle
import signal
from dataclasses import dataclass
from typing import Literal

from launcher.protocol import STACKS_FILE
from launcher.supervise.stacks import console_lines
from launcher.testing.messages import (
    OUTCOME_FILE,
    STDERR_FILE,
    STDOUT_FILE,
    RankExit,
    RankOutcome,
    RunReply,
)

CRASH_LINES = 30  # lines of a crashed rank's stderr quoted in the failure
_MACHINERY = (os.path.dirname(os.path.abspath(__file__)) + os.sep, '"<frozen runpy>"')


@dataclass(frozen=True)
class RankResult:
    exit: RankExit
    outcome: RankOutcome | None  # None: the rank ended (or was stopped) before it reported
    stdout: str
    stderr: str
    stacks: str  # faulthandler's dump, when the plugin stopped the rank

    @property
    def rank(self) -> int:
        return self.exit.rank

    @property
    def failed(self) -> bool:
        return self.outcome is None or self.outcome.outcome == "failed"


@dataclass(frozen=True)
class Verdict:
    outcome: Literal["passed", "failed", "skipped", "xfailed"]
    text: str = ""


def read_results(folder: str, reply: RunReply) -> list[RankResult]:
    results = []
    for end in reply.exits:
        rank_dir = os.path.join(folder, f"rank{end.rank}")
        outcome = None
        try:
            with open(os.path.join(rank_dir, OUTCOME_FILE), "rb") as handle:
                outcome = pickle.load(handle)
        except (OSError, EOFError, pickle.UnpicklingError):
            pass
        stacks = _read(os.path.join(rank_dir, STACKS_FILE)).partition("\n")[2]  # after the main thread's name
        results.append(RankResult(end, outcome, _read(os.path.join(rank_dir, STDOUT_FILE)),
                                  _read(os.path.join(rank_dir, STDERR_FILE)), stacks if end.stopped else ""))
    return results


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def verdict(results: list[RankResult], reply: RunReply, timeout: float) -> Verdict:
    nprocs = len(results)
    if reply.timed_out:
        running = [r.rank for r in results if r.exit.stopped and r.outcome is None]
        head = (f"timed out after {timeout:g} s: {_ranks(running)} of {nprocs} still running; "
                "every rank's state and Python stacks (most recent call first):")
        return Verdict("failed", "\n".join([head, *(_state(r, detail=True) for r in results)]))
    failed = [r for r in results if r.failed]
    if failed:
        first = min(failed, key=_blame_order)
        others = [_state(r, detail=r.exit.stopped) for r in results if r is not first]
        text = f"rank {first.rank} (of {nprocs}) {_failure(first)}"
        if others:
            text += "\n\nthe other ranks:\n" + "\n".join(others)
        return Verdict("failed", text)
    for kind in ("xfailed", "skipped"):
        reasons = [r for r in results if r.outcome is not None and r.outcome.outcome == kind]
        if reasons:
            return Verdict(kind, reasons[0].outcome.message if reasons[0].outcome else "")  # type: ignore[arg-type]
    return Verdict("passed")


def _blame_order(result: RankResult) -> tuple[bool, float, int]:
    """Own failures before those raised in a collective, then the earliest, then the lowest rank."""
    outcome = result.outcome
    if outcome is None:
        return (False, result.exit.ended_at, result.rank)
    return (outcome.in_collective, outcome.raised_at, result.rank)


def _failure(result: RankResult) -> str:
    if result.outcome is not None:
        return f"failed: {result.outcome.message}\n\n{result.outcome.report.strip(chr(10)).rstrip()}"
    tail = "\n".join(result.stderr.rstrip().splitlines()[-CRASH_LINES:])
    return f"{_death(result.exit)} before it reported; the end of its stderr:\n{tail}"


def _death(end: RankExit) -> str:
    if end.signal is not None:
        try:
            name = signal.Signals(end.signal).name
        except ValueError:
            name = f"signal {end.signal}"
        return f"was killed by {name}"
    return f"exited with code {end.exitcode}"


def _state(result: RankResult, detail: bool) -> str:
    """One line for a rank (its stacks below it when it was stopped and ``detail``)."""
    outcome, end = result.outcome, result.exit
    prefix = f"  rank {result.rank}:"
    if outcome is not None:
        line = f"{prefix} {outcome.outcome}" + (f": {outcome.message}" if outcome.message else "")
        if outcome.in_collective:
            line += " (raised in torch.distributed: most likely a consequence of the failure above)"
        return line
    if not end.stopped:
        return f"{prefix} {_death(end)} before it reported (see its stderr)"
    line = f"{prefix} stopped while still running"
    if detail and result.stacks.strip():
        line += "; its Python stacks:\n" + console_lines(result.rank, _without_machinery(result.stacks)).rstrip()
    return line


def _without_machinery(dump: str) -> str:
    """A faulthandler dump without the frames of the plugin's server and rank code under the test's."""
    return "".join(line for line in dump.splitlines(keepends=True)
                   if not any(part in line for part in _MACHINERY))


def _ranks(ranks: list[int]) -> str:
    return ("rank " if len(ranks) == 1 else "ranks ") + ", ".join(map(str, ranks))
