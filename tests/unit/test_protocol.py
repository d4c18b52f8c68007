"""The worker/launcher contract: the error file round-trips through elastic's reader, and odd files do not break it."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from launcher.protocol import RaisedError, WorkerPayload, rank_dir, read_error_file, write_error_file
from launcher.schema import JobConfig
from launcher.targets import FunctionTarget

pytestmark = pytest.mark.timeout(30)


def test_the_error_file_round_trips_through_elastic(tmp_path: Path) -> None:
    from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

    path = tmp_path / "error.json"
    raised = RaisedError("ValueError: bad input", 'Traceback (most recent call last):\n  File "t.py"\n', 1234.5678)
    write_error_file(str(path), raised)
    assert not (tmp_path / "error.json.partial").exists()  # written whole, then renamed into place
    assert read_error_file(json.loads(path.read_text())) == raised
    failure = ProcessFailure(local_rank=0, pid=1, exitcode=1, error_file=str(path))  # what the agent does
    assert read_error_file(failure.error_file_data) == raised
    assert failure.timestamp == 1234  # elastic reads its own field of the same file


@pytest.mark.parametrize("data", [
    None, "", [], {"other": 1}, {"message": "<N/A>"}, {"message": "<NONE>"}, {"message": {"extraInfo": "x"}},
    {"message": {"message": "m", "extraInfo": {"time": "soon"}}},
])
def test_files_written_by_others_read_as_what_they_hold(data: object) -> None:
    record = read_error_file(data)
    assert record.time is None and record.traceback is None


def test_elastics_own_layout_reads_too() -> None:
    """@record (elastic) writes the message as a JSON string."""
    body = {"message": "RuntimeError: x", "extraInfo": {"py_callstack": "tb", "timestamp": "12"}}
    assert read_error_file({"message": json.dumps(body)}) == RaisedError("RuntimeError: x", "tb", None)


def test_the_rank_folder_is_the_error_files_folder() -> None:
    assert rank_dir({"TORCHELASTIC_ERROR_FILE": "/logs/attempt_0/1/error.json"}) == "/logs/attempt_0/1"
    assert rank_dir({}) is None  # not under the launcher


def test_the_payload_pickles_for_spawned_workers() -> None:
    payload = WorkerPayload(FunctionTarget("main", module="pkg.train"), ("a",), JobConfig(seed=1), "gloo", "spawn",
                            {"lr": 0.1}, {"A": "1"})
    assert pickle.loads(pickle.dumps(payload)) == payload
