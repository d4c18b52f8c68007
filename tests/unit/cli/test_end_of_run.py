"""The end of every run: ranks, wall time, restarts, exit code and logs in one line; what a function job returned."""

from __future__ import annotations

import pytest

from launcher.cli.end_of_run import duration, end_line, end_of_run, returned_line
from launcher.result import Hang, RankFailure, RunResult

pytestmark = pytest.mark.timeout(30)

FAILED = RankFailure(rank=1, local_rank=1, host="h", pid=7, exitcode=3, signal=None, timestamp=1.0, message=None,
                     traceback=None)


@pytest.mark.parametrize(("result", "expected"), [
    (RunResult(wall_time=12.34, world_size=4, nodes=1), "4 ranks finished in 12.3 s"),
    (RunResult(wall_time=2.0, world_size=1, nodes=1, restarts=1, log_dir="runs/exp1/r"),
     "1 rank finished in 2.0 s after 1 restart; logs in runs/exp1/r (attempt_0 to attempt_1)"),
    (RunResult(wall_time=75, world_size=8, nodes=2, failures=(FAILED,), restarts=2, log_dir="runs/r"),
     "8 ranks on 2 nodes failed after 1 min 15 s and 2 restarts, exit code 3; logs in runs/r (attempt_0 to attempt_2)"),
    (RunResult(wall_time=0.4, interrupted_by="SIGINT"), "the job stopped by SIGINT after 0.4 s, exit code 130"),
    (RunResult(wall_time=40, world_size=2, nodes=1, failures=(FAILED,), hang=Hang(1, 1, 30.0, 30.0)),
     "2 ranks stopped by the hang watchdog after 40.0 s, exit code 124"),
    (RunResult(wall_time=5, world_size=2, nodes=1, stopped_after_checkpoint=10),
     "2 ranks stopped after 5.0 s, exit code 75"),
])
def test_the_end_line(result: RunResult, expected: str) -> None:
    assert end_line(result) == f"launcher: {expected}"


def test_the_end_line_is_the_last_line_and_return_values_come_before_it() -> None:
    result = RunResult(return_values={0: 0.93, 1: 0.93}, wall_time=1.0, world_size=2, nodes=1)
    assert end_of_run(result) == ["launcher: all 2 ranks returned 0.93", "launcher: 2 ranks finished in 1.0 s"]
    assert end_of_run(RunResult(return_values={0: None}, wall_time=1.0, world_size=1, nodes=1)) == [
        "launcher: 1 rank finished in 1.0 s"]  # a script, or a function that returned nothing


@pytest.mark.parametrize(("values", "world_size", "expected"), [
    ({0: {"acc": 0.9}}, 1, "rank 0 returned {'acc': 0.9}"),
    ({0: 7, 1: 7, 2: 7, 3: 7}, 8, "the 4 ranks of this node returned 7"),  # one node of two
    ({0: 0, 1: 10, 2: None}, 3, "rank 0 returned 0, rank 1 returned 10, rank 2 returned None"),
    ({0: "x" * 500}, 1, f"rank 0 returned '{'x' * 27}...{'x' * 28}'"),  # 60 characters
    ({rank: rank for rank in range(10)}, 10,
     ", ".join(f"rank {rank} returned {rank}" for rank in range(8)) + ", and 2 more ranks"),
])
def test_return_values_are_short(values: dict[int, object], world_size: int, expected: str) -> None:
    assert returned_line(values, world_size) == f"launcher: {expected}"


class _Ambiguous:
    """Like a tensor of several elements: == gives something whose truth raises."""

    def __eq__(self, other: object) -> bool:
        raise ValueError("ambiguous")

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return "Ambiguous()"


def test_values_that_cannot_be_compared_are_shown_per_rank() -> None:
    assert returned_line({0: _Ambiguous(), 1: _Ambiguous()}, 2) == (
        "launcher: rank 0 returned Ambiguous(), rank 1 returned Ambiguous()")


@pytest.mark.parametrize(("seconds", "text"), [(0.04, "0.0 s"), (59.94, "59.9 s"), (61, "1 min 01 s"),
                                               (3725, "1 h 02 min")])
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_what_the_run_folder_holds_comes_just_before_the_end_line(tmp_path) -> None:
    folder = tmp_path / "runs" / "20261206-120000-r"
    (folder / "metrics").mkdir(parents=True)
    (folder / "events.jsonl").write_text("")
    result = RunResult(wall_time=1.0, world_size=2, nodes=1, log_dir=str(folder))
    lines = end_of_run(result, checkpoint_dir="ckpt")
    assert lines == [f"launcher: metrics and events in the run folder (a picture: python -m launcher report {folder}); "
                     "checkpoints in ckpt", f"launcher: 2 ranks finished in 1.0 s; logs in {folder}"]
    (folder / "metrics").rmdir()
    assert end_of_run(result)[0] == (f"launcher: events in the run folder (a picture: python -m launcher report "
                                     f"{folder})")
    assert end_of_run(RunResult(wall_time=1.0, world_size=1, nodes=1), checkpoint_dir="ck") == [
        "launcher: checkpoints in ck", "launcher: 1 rank finished in 1.0 s"]
