"""A run directory read back and checked against docs/monitoring.md: metrics, world, events, run.json.

Only ``metrics/rank_<R>.jsonl`` is required. A line that breaks the schema is a ``ConfigError`` naming the file
and the line; the last line of a file that does not end with a newline (a run killed mid-write) is left out.
Never imports torch.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher.errors import ConfigError, UsageError

SCHEMA_VERSION = 1
_RANK_FILE = re.compile(r"rank_(\d+)\.jsonl")
_HINT = "each line is one JSON record as docs/monitoring.md sets out"
_MISSING = object()


@dataclass(frozen=True)
class Record:
    """One interval of one rank: the fields of a ``metrics/rank_<R>.jsonl`` line that the report uses."""

    time: float
    rank: int
    attempt: int
    elapsed: float
    interval: float
    step: int
    samples: int
    steps_per_s: float
    samples_per_s: float
    data_wait: float
    rss_bytes: int
    children_rss_bytes: int
    gpu_used_bytes: int | None  # None on CPU
    gpu_total_bytes: int | None
    metrics: Mapping[str, float]


@dataclass(frozen=True)
class Event:
    """One line of ``events.jsonl``: its time, its name (start, restart, failure, hang, exit) and every field."""

    time: float
    name: str
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class RunRecords:
    folder: Path
    ranks: Mapping[int, tuple[Record, ...]]  # by rank, ascending; each rank's records in file order
    slowest: tuple[int | None, ...]  # world.jsonl: the rank named slowest in each interval (None: none was)
    events: tuple[Event, ...]
    info: Mapping[str, Any]  # run.json; empty when there is none

    def records(self) -> Iterator[Record]:
        for records in self.ranks.values():
            yield from records


def read_run(folder: Path) -> RunRecords:
    """Every file of the run directory ``folder``, read and checked."""
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such folder", "give the run directory that the end of the run printed")
    files = sorted((int(m.group(1)), path) for path in (folder / "metrics").glob("rank_*.jsonl")
                   if (m := _RANK_FILE.fullmatch(path.name)))
    if not files:
        raise UsageError(f"{folder}: no metrics/rank_<R>.jsonl files",
                         "is it a run directory, and did the job run with monitor.enabled?")
    ranks = {rank: records for rank, path in files if (records := _rank_records(path, rank))}
    if not ranks:
        raise UsageError(f"{folder / 'metrics'}: no complete record in any rank's file",
                         "the run ended before its first interval")
    world = folder / "world.jsonl"
    slowest = tuple(_slowest_rank(record, where) for where, record in _json_lines(world)) if world.exists() else ()
    events = folder / "events.jsonl"
    return RunRecords(folder, ranks, slowest, tuple(_event(r, where) for where, r in _json_lines(events))
                      if events.exists() else (), _run_info(folder / "run.json"))


def _json_lines(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """``("path:line", object)`` for each non-blank line; an unfinished last line is left out."""
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as e:
        raise ConfigError(f"{path}: cannot be read: {e.strerror}") from None
    lines = text.split("\n")  # a file that ends with a newline ends with "" here
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            value = json.loads(line)
        except json.JSONDecodeError as e:
            if number == len(lines):  # no newline after it: the writer was stopped mid-line
                return
            raise ConfigError(f"{where}: not JSON ({e.msg}, column {e.colno})", _HINT) from None
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a JSON object, got {type(value).__name__}", _HINT)
        yield where, value


def _rank_records(path: Path, rank: int) -> tuple[Record, ...]:
    records: list[Record] = []
    for where, line in _json_lines(path):
        record = _record(line, where)
        if record.rank != rank:
            raise ConfigError(f"{where}: rank {record.rank} in the file of rank {rank}", _HINT)
        if records and record.attempt < records[-1].attempt:
            raise ConfigError(f"{where}: attempt {record.attempt} after attempt {records[-1].attempt}",
                              "every attempt is appended after the one before")
        records.append(record)
    return tuple(records)


def _record(line: dict[str, Any], where: str) -> Record:
    version = line.get("v")
    if version != SCHEMA_VERSION:
        raise ConfigError(f"{where}: schema version {json.dumps(version)}; this launcher reads {SCHEMA_VERSION}",
                          "report it with the launcher version that wrote the run")
    gpu = line.get("gpu")
    if gpu is not None and not isinstance(gpu, dict):
        raise ConfigError(f"{where}: gpu: expected an object or null, got {json.dumps(gpu)}", _HINT)
    metrics = line.get("metrics", {})
    if not isinstance(metrics, dict):
        raise ConfigError(f"{where}: metrics: expected an object, got {json.dumps(metrics)}", _HINT)
    return Record(
        time=_number(line, "time", where), rank=_integer(line, "rank", where),
        attempt=_integer(line, "attempt", where), elapsed=_number(line, "elapsed", where),
        interval=_number(line, "interval", where), step=_integer(line, "step", where),
        samples=_integer(line, "samples", where), steps_per_s=_number(line, "steps_per_s", where),
        samples_per_s=_number(line, "samples_per_s", where), data_wait=_number(line, "data_wait", where),
        rss_bytes=_integer(line, "rss_bytes", where), children_rss_bytes=_integer(line, "children_rss_bytes", where),
        gpu_used_bytes=None if gpu is None else _integer(gpu, "memory_used_bytes", f"{where}: gpu"),
        gpu_total_bytes=None if gpu is None else _integer(gpu, "memory_total_bytes", f"{where}: gpu"),
        metrics={name: _number(metrics, name, f"{where}: metrics") for name, value in metrics.items()
                 if value is not None},  # null: no value yet
    )


def _number(line: Mapping[str, Any], name: str, where: str) -> float:
    value = line.get(name, _MISSING)
    if value is _MISSING:
        raise ConfigError(f"{where}: {name}: missing", _HINT)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: {name}: expected a number, got {json.dumps(value)}", _HINT)
    return float(value)


def _integer(line: Mapping[str, Any], name: str, where: str) -> int:
    value = _number(line, name, where)
    if not value.is_integer():
        raise ConfigError(f"{where}: {name}: expected a whole number, got {value}", _HINT)
    return int(value)


def _slowest_rank(line: dict[str, Any], where: str) -> int | None:
    slowest = line.get("slowest")
    if slowest is None:
        return None
    if not isinstance(slowest, dict):
        raise ConfigError(f"{where}: slowest: expected an object or null, got {json.dumps(slowest)}", _HINT)
    return _integer(slowest, "rank", f"{where}: slowest")


def _event(line: dict[str, Any], where: str) -> Event:
    name = line.get("event")
    if not isinstance(name, str):
        raise ConfigError(f"{where}: event: expected a name such as \"restart\", got {json.dumps(name)}", _HINT)
    return Event(_number(line, "time", where), name, line)


def _run_info(path: Path) -> Mapping[str, Any]:
    if not path.exists():
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except OSError as e:
        raise ConfigError(f"{path}: cannot be read: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}:{e.lineno}: not JSON ({e.msg})", "run.json is one JSON object") from None
    if not isinstance(info, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(info).__name__}", "run.json is one JSON object")
    return info
