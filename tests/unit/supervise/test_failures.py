"""From elastic's failure records to the launcher's: the root-cause rule, and files that cannot be read."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from launcher.protocol import RaisedError, write_error_file
from launcher.result import RunResult
from launcher.supervise.failures import ended_by_the_stop, process_failure, rank_failures

pytestmark = pytest.mark.timeout(30)


def _raised(tmp_path: Path, name: str, when: float | None) -> str:
    path = tmp_path / name
    write_error_file(str(path), RaisedError("KeyError: 'shard'", "Traceback ...\nKeyError: 'shard'\n", when))
    return str(path)


def test_a_corrupt_error_file_does_not_break_the_summary(tmp_path: Path) -> None:
    broken = tmp_path / "error.json"
    broken.write_text("")  # a rank killed while writing, or a user's own file
    failure = process_failure(1, 1234, 1, str(broken))
    assert failure.exitcode == 1 and failure.local_rank == 1
    (only,) = rank_failures({1: failure}, stopped={1: False}, exit_times={1: 5.0}, last_lines={}, stop_began=None)
    assert only.message is None and only.timestamp == 5.0  # when its exit was seen


@pytest.mark.parametrize(("raised_before_the_stop", "expected"), [
    (0.5, (1, None, False)),  # it raised before the launcher's stop signal: a failure of its own
    (0.001, (1, None, False)),  # raised at the same moment as the rank that failed first, still before the stop
    (-0.5, (None, "SIGTERM", True)),  # it raised after the stop signal (a peer gone, or the signal): a consequence
    (None, (None, "SIGTERM", True)),  # it raised nothing (killed on its way): nothing says it failed on its own
])
def test_a_stopped_rank_that_raised_before_the_stop_failed_on_its_own(
    raised_before_the_stop: float | None, expected: tuple[object, ...], tmp_path: Path
) -> None:
    """Rank 0 raised and exited first; rank 1, still running then, was stopped by the launcher."""
    stop_began = 1000.0
    raised_at = None if raised_before_the_stop is None else stop_began - raised_before_the_stop
    stopped = process_failure(1, 4242, -signal.SIGTERM, _raised(tmp_path, "1.json", raised_at) if raised_at else "")
    trigger = process_failure(0, 4241, 1, _raised(tmp_path, "0.json", stop_began - 0.6))
    failures = rank_failures({0: trigger, 1: stopped}, stopped={0: False, 1: True},
                             exit_times={0: stop_began - 0.01, 1: stop_began + 0.02}, last_lines={1: ("last",)},
                             stop_began=stop_began)
    rank1 = next(f for f in failures if f.rank == 1)
    assert (rank1.exitcode, rank1.signal, rank1.stopped_by_launcher) == expected
    assert rank1.timestamp == (raised_at or stop_began + 0.02) and rank1.last_lines == ("last",)  # raised, or seen
    assert [f.rank for f in failures] == [0, 1]  # earliest first: rank 0 raised first, the root cause


def test_without_a_stop_no_rank_counts_as_stopped(tmp_path: Path) -> None:
    ranks = {r: process_failure(r, 100 + r, 1, _raised(tmp_path, f"{r}.json", 10.0 + r)) for r in (0, 1)}
    failures = rank_failures(ranks, stopped={0: False, 1: False}, exit_times={}, last_lines={}, stop_began=None)
    assert [(f.rank, f.exitcode, f.stopped_by_launcher) for f in failures] == [(0, 1, False), (1, 1, False)]


GLOO_TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/work/train.py", line 79, in <module>\n'
    "    dist.barrier()\n"
    '  File "/venv/lib/python3.11/site-packages/torch/distributed/c10d_logger.py", line 83, in wrapper\n'
    "    return func(*args, **kwargs)\n"
    '  File "/venv/lib/python3.11/site-packages/torch/distributed/distributed_c10d.py", line 5356, in barrier\n'
    "    work.wait()\n"
    "RuntimeError: [gloo/transport/tcp/pair.cc:553] Connection closed by peer [127.0.0.1]:24222.\n"
)


def test_a_peers_error_out_of_a_collective_before_the_stop_is_still_a_consequence(tmp_path: Path) -> None:
    """Rank 1 segfaulted (no raise time); rank 0's barrier raised as rank 1 vanished, before the launcher saw
    rank 1 end and stopped rank 0. Rank 0 is not the root cause, and was stopped by the launcher."""
    stop_began = 1000.0
    gloo = tmp_path / "0.json"
    write_error_file(str(gloo), RaisedError("RuntimeError: Connection closed by peer", GLOO_TRACEBACK,
                                            stop_began - 0.003))
    crashed = process_failure(1, 4242, -signal.SIGSEGV, "")
    consequence = process_failure(0, 4241, -signal.SIGTERM, str(gloo))
    failures = rank_failures({0: consequence, 1: crashed}, stopped={0: True, 1: False},
                             exit_times={0: stop_began + 0.01, 1: stop_began - 0.001}, last_lines={},
                             stop_began=stop_began)
    assert [(f.rank, f.stopped_by_launcher, f.signal) for f in failures] == [(0, True, "SIGTERM"),
                                                                               (1, False, "SIGSEGV")]
    assert RunResult(failures=failures).root_cause is failures[1]


def test_a_peers_error_out_of_a_collective_that_exited_before_the_stop_is_not_the_root_cause(tmp_path: Path) -> None:
    """Rank 1 segfaulted; rank 0's barrier raised as rank 1 vanished, and rank 0 exited before the launcher saw
    rank 1 end (a busy host): rank 0 failed on its own, first in time, but as a consequence; rank 1 is the root
    cause, and the job's exit code is its signal's."""
    seen = 1000.0
    gloo = tmp_path / "0.json"
    write_error_file(str(gloo), RaisedError("RuntimeError: Connection closed by peer", GLOO_TRACEBACK, seen - 0.2))
    crashed = process_failure(1, 4242, -signal.SIGSEGV, "")
    consequence = process_failure(0, 4241, 1, str(gloo))
    failures = rank_failures({0: consequence, 1: crashed}, stopped={0: False, 1: False},
                             exit_times={0: seen - 0.1, 1: seen}, last_lines={}, stop_began=seen)
    assert [(f.rank, f.stopped_by_launcher, f.peer_gone, f.exitcode) for f in failures] == [(0, False, True, 1),
                                                                                           (1, False, False, None)]
    result = RunResult(failures=failures)
    assert result.root_cause is failures[1] and result.exit_code == 128 + signal.SIGSEGV


def test_errors_out_of_collectives_alone_name_the_earliest(tmp_path: Path) -> None:
    """A collective that fails on every rank (mismatched tensors, say): the earliest is the root cause."""
    errors = {}
    for rank in (0, 1):
        write_error_file(str(tmp_path / f"{rank}.json"), RaisedError("RuntimeError: size mismatch", GLOO_TRACEBACK,
                                                                     10.0 + rank))
        errors[rank] = process_failure(rank, 100 + rank, 1, str(tmp_path / f"{rank}.json"))
    failures = rank_failures(errors, stopped={0: False, 1: False}, exit_times={}, last_lines={}, stop_began=None)
    assert RunResult(failures=failures).root_cause is failures[0] and failures[0].rank == 0


def test_an_error_out_of_a_collective_is_told_from_the_ranks_own(tmp_path: Path) -> None:
    """What the restart line tells apart, as the summary does: a rank that left a collective as a peer went."""
    gloo = tmp_path / "gloo.json"
    write_error_file(str(gloo), RaisedError("RuntimeError: Connection closed by peer", GLOO_TRACEBACK, 1.0))
    errors = {0: process_failure(0, 100, 1, str(gloo)),
              1: process_failure(1, 101, 1, _raised(tmp_path, "own.json", 1.0)),
              2: process_failure(2, 102, -signal.SIGSEGV, "")}  # no error file
    failures = rank_failures(errors, stopped=dict.fromkeys(errors, False), exit_times={}, last_lines={},
                             stop_began=None)
    assert {f.rank: f.peer_gone for f in failures} == {0: True, 1: False, 2: False}


@pytest.mark.parametrize(("exitcode", "sent", "ended_by_the_stop_"), [
    (-signal.SIGTERM, {signal.SIGTERM}, True),  # the launcher's SIGTERM
    (-signal.SIGKILL, {signal.SIGTERM, signal.SIGKILL}, True),  # the grace ran out: the launcher's SIGKILL
    (-signal.SIGKILL, {signal.SIGTERM}, False),  # killed from elsewhere (itself), reaped only after the stop began
    (-signal.SIGSEGV, {signal.SIGTERM}, False),  # crashed on its own
    (1, {signal.SIGTERM}, True),  # an exit code, as a SIGTERM handler's: not to be told apart, the stop's
    (None, {signal.SIGTERM, signal.SIGKILL}, True),
])
def test_a_rank_ended_by_the_stop_died_of_a_signal_the_launcher_sent(
    exitcode: int | None, sent: set[int], ended_by_the_stop_: bool
) -> None:
    assert ended_by_the_stop(exitcode, {int(s) for s in sent}) is ended_by_the_stop_
