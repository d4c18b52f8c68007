"""Tailing the ranks' metrics files: only complete lines, files that appear late, every attempt appended."""

from __future__ import annotations

import json
from pathlib import Path

from launcher.supervise import metrics_feed
from launcher.supervise.metrics_feed import MetricsFeed, parse_record


def _line(rank: int, step: int, **fields: object) -> bytes:
    return (json.dumps({"v": 1, "time": 100.0 + step, "rank": rank, "step": step, **fields}) + "\n").encode()


def _append(folder: Path, rank: int, data: bytes) -> None:
    (folder / "metrics").mkdir(exist_ok=True)
    with open(folder / "metrics" / f"rank_{rank}.jsonl", "ab") as file:
        file.write(data)


def test_a_partial_last_line_waits_for_its_newline(tmp_path: Path) -> None:
    feed = MetricsFeed(str(tmp_path))
    assert feed.poll() == {}  # no metrics folder yet
    whole = _line(0, 2)
    _append(tmp_path, 0, _line(0, 1) + whole[:10])
    assert feed.poll()[0]["step"] == 1
    _append(tmp_path, 0, whole[10:-1])
    assert feed.poll()[0]["step"] == 1  # still no newline
    _append(tmp_path, 0, b"\n")
    assert feed.poll()[0]["step"] == 2


def test_files_that_appear_late_are_read_and_other_files_are_not(tmp_path: Path) -> None:
    feed = MetricsFeed(str(tmp_path))
    _append(tmp_path, 1, _line(1, 5))
    assert set(feed.poll()) == {1}
    _append(tmp_path, 0, _line(0, 3) + _line(0, 4))
    (tmp_path / "metrics" / "notes.txt").write_text("{}\n")
    latest = feed.poll()
    assert {rank: record["step"] for rank, record in latest.items()} == {0: 4, 1: 5}


def test_attempts_append_and_a_killed_writers_unfinished_line_is_recovered(tmp_path: Path) -> None:
    feed = MetricsFeed(str(tmp_path))
    _append(tmp_path, 0, _line(0, 7, attempt=0))
    assert feed.poll()[0]["attempt"] == 0
    # Attempt 0 was killed in the middle of a record; attempt 1 appends its first record after the piece.
    _append(tmp_path, 0, _line(0, 8, attempt=0)[:15] + _line(0, 1, attempt=1))
    assert feed.poll()[0] == json.loads(_line(0, 1, attempt=1))
    _append(tmp_path, 0, b"garbage\n")
    assert feed.poll()[0]["attempt"] == 1  # a line that is no record changes nothing


def test_only_new_bytes_are_read_and_a_long_backlog_only_by_its_tail(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(metrics_feed, "TAIL_LIMIT", 200)
    feed = MetricsFeed(str(tmp_path))
    _append(tmp_path, 0, b"".join(_line(0, step) for step in range(50)))  # far more than 200 bytes
    assert feed.poll()[0]["step"] == 49
    reads = []
    real_open = open

    def counting_open(path, mode="r", *args, **kwargs):  # type: ignore[no-untyped-def]
        reads.append(path)
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", counting_open)
    assert feed.poll()[0]["step"] == 49 and reads == []  # nothing new: the file is not even opened
    _append(tmp_path, 0, _line(0, 50))
    assert feed.poll()[0]["step"] == 50


def test_parse_record() -> None:
    assert parse_record(b'{"v": 1, "step": 3}') == {"v": 1, "step": 3}
    assert parse_record(b'{"v": 1, "st{"v": 1, "step": 4}') == {"v": 1, "step": 4}
    assert parse_record(b"[1, 2]") is None and parse_record(b"") is None
