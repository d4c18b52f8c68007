"""The ranks compared: one ``world.jsonl`` record from each rank's latest metrics record. Pure.

The rules (docs/monitoring.md, "The straggler rule"):
- Compared: the ranks whose latest record is current: not ``final``, and taken at most ``STALE_INTERVALS``
  intervals ago (a rank that stopped, or whose file is from an earlier formation of the job, is left out).
- The rate: ``samples_per_s`` when every compared rank counts samples, else ``steps_per_s``.
- ``slowest``: among the ranks that were in their loop for the whole interval (a step made before it began),
  the rank whose rate is the smallest fraction of the mean rate of the *other* ranks, when that fraction is
  under ``SLOW_RATIO``; ties go to the lowest rank; none with fewer than two ranks.
- ``starved``: the rank with the largest ``data_wait`` share, when it is above ``STARVED_SHARE``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from launcher.supervise.metrics_feed import Record

SCHEMA_VERSION = 1
SLOW_RATIO = 0.8
STARVED_SHARE = 0.2
STALE_INTERVALS = 3


def number(record: Mapping[str, Any], key: str) -> float | None:
    """The record's value for ``key`` when it is a finite number (not a bool), else None."""
    value = record.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return None
    return float(value)


def is_current(record: Mapping[str, Any], now: float, interval: float) -> bool:
    """Whether the record was taken at most ``STALE_INTERVALS`` intervals before ``now``."""
    taken = number(record, "time")
    return taken is not None and now - taken <= STALE_INTERVALS * interval


def compared(records: Mapping[int, Record], now: float, interval: float) -> dict[int, Record]:
    """The ranks the comparison counts: current and not final."""
    return {rank: record for rank, record in records.items()
            if is_current(record, now, interval) and record.get("final") is not True}


def rate_key(records: Mapping[int, Record]) -> str:
    """``samples_per_s`` when every rank counts samples, else ``steps_per_s``."""
    counts = [number(record, "samples") for record in records.values()]
    return "samples_per_s" if counts and all(count is not None and count > 0 for count in counts) else "steps_per_s"


def world_record(records: Mapping[int, Record], now: float, interval: float) -> Record | None:
    """The ``world.jsonl`` record for these latest records at ``now``; None when no rank is compared."""
    ranks = compared(records, now, interval)
    if not ranks:
        return None
    key = rate_key(ranks)
    rates = _values(ranks, key)
    waits = _values(ranks, "data_wait")
    return {
        "v": SCHEMA_VERSION,
        "time": round(now, 3),
        "ranks": len(ranks),
        "step": _stats(_values(ranks, "step")),
        "samples_per_s": _stats(rates) if key == "samples_per_s" else None,
        "steps_per_s": _stats(_values(ranks, "steps_per_s")),
        "data_wait": _stats(waits),
        "slowest": slowest({rank: rate for rank, rate in rates.items() if in_the_loop(ranks[rank])}, key),
        "starved": starved(waits),
    }


def in_the_loop(record: Mapping[str, Any]) -> bool:
    """Whether the rank had made a step before the record's interval began: its rate is the loop's, not its
    start-up's (a rank still importing or joining is not a straggler; the hang watchdog minds one that never starts)."""
    step, rate, interval = number(record, "step"), number(record, "steps_per_s"), number(record, "interval")
    if step is None or rate is None or interval is None:
        return False
    return step - rate * interval > 0.5


def slowest(rates: Mapping[int, float], key: str) -> Record | None:
    """The rank furthest below the mean of the others, when under ``SLOW_RATIO`` of it; else None."""
    if len(rates) < 2:
        return None
    total = sum(rates.values())
    ratios = {}
    for rank, rate in rates.items():
        others = (total - rate) / (len(rates) - 1)
        if others > 0:
            ratios[rank] = rate / others
    if not ratios:
        return None
    rank = min(ratios, key=lambda each: (ratios[each], each))
    if ratios[rank] >= SLOW_RATIO:
        return None
    return {"rank": rank, key: _rounded(rates[rank]), "ratio": round(ratios[rank], 3)}


def starved(waits: Mapping[int, float]) -> Record | None:
    """The rank with the largest data-wait share, when above ``STARVED_SHARE``; else None."""
    if not waits:
        return None
    rank = max(waits, key=lambda each: (waits[each], -each))
    return {"rank": rank, "data_wait": _rounded(waits[rank])} if waits[rank] > STARVED_SHARE else None


def _values(records: Mapping[int, Record], key: str) -> dict[int, float]:
    values = {rank: number(record, key) for rank, record in records.items()}
    return {rank: value for rank, value in values.items() if value is not None}


def _stats(values: Mapping[int, float]) -> Record | None:
    if not values:
        return None
    return {"min": _rounded(min(values.values())), "mean": _rounded(sum(values.values()) / len(values)),
            "max": _rounded(max(values.values()))}


def _rounded(value: float) -> float | int:
    return int(value) if value == int(value) else round(value, 4)
