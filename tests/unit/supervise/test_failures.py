"""From elastic's failure records to the launcher's: the root-cause rule, and files that cannot be read."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from launcher.protocol import RaisedError, write_error_file
from launcher.supervise.failures import process_failure, rank_failures

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
    (only,) = rank_failures({1: failure}, stopped={1: False}, exit_times={1: 5.0}, last_lines={})
    assert only.message is None and only.timestamp == 5.0  # when its exit was seen


@pytest.mark.parametrize(("trigger_raised_after", "expected"), [
    (0.5, (1, None, False)),  # it raised before the rank whose failure stopped the job: the root cause
    (-0.5, (None, "SIGTERM", True)),  # it raised after that rank (a peer gone): a consequence
    (None, (None, "SIGTERM", True)),  # that rank raised nothing (killed, os._exit): nothing to compare
])
def test_a_stopped_rank_that_raised_first_is_the_root_cause(
    trigger_raised_after: float | None, expected: tuple[object, ...], tmp_path: Path
) -> None:
    """Rank 1 raised; rank 0 failed too and was seen first, so rank 1 was stopped on its way out."""
    raised_at = 1000.0
    stopped = process_failure(1, 4242, -signal.SIGTERM, _raised(tmp_path, "1.json", raised_at))
    trigger_time = None if trigger_raised_after is None else raised_at + trigger_raised_after
    trigger = process_failure(0, 4241, 1, _raised(tmp_path, "0.json", trigger_time) if trigger_time else "")
    failures = rank_failures({0: trigger, 1: stopped}, stopped={0: False, 1: True},
                             exit_times={0: raised_at + 1, 1: raised_at + 2}, last_lines={1: ("last",)})
    rank1 = next(f for f in failures if f.rank == 1)
    assert (rank1.exitcode, rank1.signal, rank1.stopped_by_launcher) == expected
    assert rank1.message == "KeyError: 'shard'" and rank1.timestamp == raised_at and rank1.last_lines == ("last",)
    assert [f.timestamp for f in failures] == sorted(f.timestamp for f in failures)  # earliest first
