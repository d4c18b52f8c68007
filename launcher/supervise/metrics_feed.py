"""The latest metrics record of each rank, read from ``<run folder>/metrics/rank_<R>.jsonl`` as the ranks append.

Each rank's monitor appends one JSON object a line (docs/monitoring.md), every attempt to the same file.
``MetricsFeed.poll()`` reads only the bytes added since the last poll: files may appear at any time, a
line is used once its newline arrived, and a line that does not parse (the unfinished last line of a
rank that was killed, with the next attempt's record after it) is recovered from its last record start
or skipped. Reads files only: no threads, no torch.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

Record = dict[str, Any]

_FILE_NAME = re.compile(r"rank_(\d+)\.jsonl")
_RECORD_START = b'{"v"'  # how a record begins: a killed writer's unfinished line ends where the next one starts
TAIL_LIMIT = 1 << 20  # bytes of new text read at most per file and poll: only the latest record matters


class _Tail:
    """One rank's file: where the next read begins, and the unfinished last line."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""

    def new_lines(self) -> list[bytes]:
        """The complete lines added since the last call (the unfinished one is kept for later)."""
        try:
            size = os.stat(self.path).st_size
        except OSError:
            return []
        if size < self.offset:  # truncated or replaced: start again
            self.offset, self.partial = 0, b""
        if size == self.offset:
            return []
        skip = max(self.offset, size - TAIL_LIMIT)
        try:
            with open(self.path, "rb") as file:
                file.seek(skip)
                data = file.read(size - skip)
        except OSError:
            return []
        behind = skip > self.offset
        self.offset = skip + len(data)
        if behind:  # too far behind: the first line read is a piece of one
            self.partial, data = b"", data.partition(b"\n")[2]
        *lines, self.partial = (self.partial + data).split(b"\n")
        return lines


def parse_record(line: bytes) -> Record | None:
    """A record from one line, or None; a line that holds the unfinished start of another gives its last record."""
    for start in (0, line.rfind(_RECORD_START)):
        if start < 0:
            continue
        try:
            value = json.loads(line[start:])
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


class MetricsFeed:
    """Tails every ``metrics/rank_<R>.jsonl`` of one run folder; ``poll()`` gives each rank's latest record."""

    def __init__(self, run_folder: str) -> None:
        self._folder = os.path.join(run_folder, "metrics")
        self._tails: dict[int, _Tail] = {}
        self._latest: dict[int, Record] = {}
        self._running: dict[int, Record] = {}

    def poll(self) -> dict[int, Record]:
        """Read what was appended since the last poll; the latest record of each rank that wrote one, by rank."""
        self._find_new_files()
        for rank, tail in self._tails.items():
            latest = None
            for line in reversed(tail.new_lines()):
                record = parse_record(line)
                if record is None:
                    continue
                latest = latest or record
                if record.get("final") is not True:
                    self._running[rank] = record
                    break
            if latest is not None:
                self._latest[rank] = latest
        return dict(self._latest)

    def running(self, rank: int) -> Record | None:
        """The latest record of ``rank`` that is not ``final`` (its rates cover a whole interval), if any."""
        return self._running.get(rank)

    def _find_new_files(self) -> None:
        try:
            entries = os.scandir(self._folder)
        except OSError:  # not made yet
            return
        with entries:
            for entry in entries:
                match = _FILE_NAME.fullmatch(entry.name)
                if match is not None and int(match[1]) not in self._tails:
                    self._tails[int(match[1])] = _Tail(entry.path)
