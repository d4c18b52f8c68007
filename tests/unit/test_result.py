"""A run's exit code: one table (``launcher.errors``), read from the typed result."""

from __future__ import annotations

import pytest

from launcher.result import OutputClosed, RankFailure, RunResult

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(("signal_name", "code"), [("SIGINT", 130), ("SIGTERM", 143), ("SIGHUP", 129),
                                                   ("SIGQUIT", 131)])
def test_an_interrupted_launcher_exits_128_plus_the_signal(signal_name: str, code: int) -> None:
    assert RunResult(interrupted_by=signal_name).exit_code == code


def test_a_root_cause_killed_by_a_signal_gives_128_plus_it() -> None:
    killed = RankFailure(rank=1, local_rank=1, host="h", pid=7, exitcode=None, signal="SIGSEGV", timestamp=1.0,
                         message=None, traceback=None)
    assert RunResult(failures=(killed,)).exit_code == 139


def test_a_console_whose_reader_left_gives_141_unless_a_rank_failed_on_its_own() -> None:
    closed = OutputClosed("stdout", stopped_job=True)
    assert RunResult(output_closed=closed).exit_code == 141 and not RunResult(output_closed=closed).ok
    failed = RankFailure(rank=1, local_rank=1, host="h", pid=7, exitcode=3, signal=None, timestamp=1.0,
                         message=None, traceback=None)
    assert RunResult(failures=(failed,), output_closed=closed).exit_code == 3


def test_a_job_stopped_after_a_checkpoint_exits_75_unless_a_rank_failed() -> None:
    assert RunResult(stopped_after_checkpoint=12).exit_code == 75
    assert RunResult(stopped_after_checkpoint=12).ok  # not a failure: the API returns the result
    failed = RankFailure(rank=0, local_rank=0, host="h", pid=7, exitcode=3, signal=None, timestamp=1.0,
                         message=None, traceback=None)
    assert RunResult(failures=(failed,), stopped_after_checkpoint=12).exit_code == 3
