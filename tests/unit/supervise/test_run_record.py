"""run.json and events.jsonl: written at the start, completed at the end, one JSON object a line, never fatal."""

from __future__ import annotations

import json

from launcher.result import Hang, RankFailure, RunResult
from launcher.schema import CheckpointSettings
from launcher.supervise.run_record import append_event, record_end, record_start
from tests.unit.plan.test_build import _plan


def test_the_start_and_the_end_of_a_run_are_recorded(tmp_path):
    plan = _plan(checkpoint=CheckpointSettings(dir=str(tmp_path / "ck")))
    record_start(str(tmp_path), plan, 1000.0)
    run = json.loads((tmp_path / "run.json").read_text())
    assert (run["v"], run["nprocs"], run["started"], run["backend"]) == (1, 2, 1000.0, "gloo")
    assert run["settings"]["world"]["nprocs"] == 2 and run["checkpoint_dir"] == str(tmp_path / "ck")
    assert (tmp_path / "checkpoints").is_symlink()
    append_event(str(tmp_path), "restart", number=1, why="rank 1 failed")
    failure = RankFailure(rank=1, local_rank=1, host="h", pid=7, exitcode=3, signal=None, timestamp=1.0,
                          message="ValueError: x", traceback=None)
    record_end(str(tmp_path), RunResult(failures=(failure,), hang=Hang(1, 1, 31.0, 30.0), wall_time=40.0,
                                        restarts=1, world_size=2, nodes=1))
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["start", "restart", "failure", "hang", "exit"]
    assert events[2]["rank"] == 1 and events[2]["message"] == "ValueError: x"
    assert events[4]["exit_code"] == 124 and events[4]["restarts"] == 1
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["exit_code"] == 124 and run["wall_time"] == 40.0 and run["nprocs"] == 2
    assert not list(tmp_path.glob("*.partial"))


def test_a_folder_that_cannot_be_written_loses_its_record_not_the_run(tmp_path):
    missing = tmp_path / "gone"
    append_event(str(missing), "start")
    record_end(str(missing), RunResult(wall_time=1.0))
    assert not missing.exists()
