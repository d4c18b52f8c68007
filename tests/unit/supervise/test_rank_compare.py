"""The ranks compared: the slowest and the starved rank are named; stale and final ranks are left out."""

from __future__ import annotations

from typing import Any

from launcher.supervise.rank_compare import world_record

NOW = 1000.0


def _record(rank: int, samples_per_s: float = 100.0, *, data_wait: float = 0.0, age: float = 0.5,
            final: bool = False, samples: int = 640, step: int = 20) -> dict[str, Any]:
    return {"v": 1, "time": NOW - age, "rank": rank, "step": step, "samples": samples, "interval": 1.0,
            "steps_per_s": samples_per_s / 32, "samples_per_s": samples_per_s, "data_wait": data_wait, "final": final}


def test_a_slow_rank_is_named_with_its_ratio_to_the_others() -> None:
    records = {0: _record(0, 100), 1: _record(1, 105), 2: _record(2, 60), 3: _record(3, 95)}
    world = world_record(records, NOW, interval=1.0)
    assert world is not None
    assert world["ranks"] == 4
    assert world["samples_per_s"] == {"min": 60, "mean": 90, "max": 105}
    assert world["slowest"] == {"rank": 2, "samples_per_s": 60, "ratio": 0.6}  # 60 / mean(100, 105, 95)
    assert world["starved"] is None


def test_no_rank_is_named_at_0_8_of_the_others_or_above() -> None:
    world = world_record({0: _record(0, 100), 1: _record(1, 80)}, NOW, interval=1.0)
    assert world is not None and world["slowest"] is None
    world = world_record({0: _record(0, 100), 1: _record(1, 79)}, NOW, interval=1.0)
    assert world is not None and world["slowest"] == {"rank": 1, "samples_per_s": 79, "ratio": 0.79}


def test_a_starved_rank_is_named_above_a_fifth_of_its_time() -> None:
    records = {0: _record(0, data_wait=0.05), 1: _record(1, data_wait=0.27), 2: _record(2, data_wait=0.2)}
    world = world_record(records, NOW, interval=1.0)
    assert world is not None
    assert world["starved"] == {"rank": 1, "data_wait": 0.27}
    assert world["data_wait"] == {"min": 0.05, "mean": 0.1733, "max": 0.27}
    records[1] = _record(1, data_wait=0.2)
    assert world_record(records, NOW, interval=1.0)["starved"] is None  # type: ignore[index]


def test_stale_and_final_ranks_are_left_out() -> None:
    records = {0: _record(0, 100), 1: _record(1, 10, age=3.5), 2: _record(2, 5, final=True), 3: _record(3, 101)}
    world = world_record(records, NOW, interval=1.0)
    assert world is not None
    assert world["ranks"] == 2 and world["slowest"] is None  # ranks 1 (3.5 intervals old) and 2 (final) are out
    assert world_record({1: _record(1, age=3.5), 2: _record(2, final=True)}, NOW, interval=1.0) is None
    assert world_record({1: _record(1, age=3.5)}, NOW, interval=2.0) is not None  # 3 intervals of 2 s


def test_without_samples_the_steps_rate_is_compared() -> None:
    records = {0: _record(0, 320, samples=0), 1: _record(1, 160, samples=0)}
    world = world_record(records, NOW, interval=1.0)
    assert world is not None
    assert world["samples_per_s"] is None and world["steps_per_s"] == {"min": 5, "mean": 7.5, "max": 10}
    assert world["slowest"] == {"rank": 1, "steps_per_s": 5, "ratio": 0.5}


def test_one_rank_is_never_the_slowest_and_missing_values_are_skipped() -> None:
    world = world_record({0: _record(0, 1)}, NOW, interval=1.0)
    assert world is not None and world["slowest"] is None and world["ranks"] == 1
    odd = {"v": 1, "time": NOW, "rank": 1, "step": None, "samples_per_s": float("nan"), "data_wait": True}
    world = world_record({0: _record(0), 1: odd}, NOW, interval=1.0)
    assert world is not None and world["ranks"] == 2 and world["step"] == {"min": 20, "mean": 20, "max": 20}
    assert world["slowest"] is None and world["data_wait"] == {"min": 0, "mean": 0, "max": 0}


def test_a_rank_still_starting_is_not_named_slowest() -> None:
    # Rank 1 made its first steps in this interval (it was importing before): its rate is its start-up's.
    starting = {**_record(1, 32), "step": 1, "steps_per_s": 1.0}
    world = world_record({0: _record(0, 100), 1: starting}, NOW, interval=1.0)
    assert world is not None and world["ranks"] == 2 and world["slowest"] is None
    running = {**_record(1, 32), "step": 9, "steps_per_s": 1.0}  # 8 steps before this interval
    world = world_record({0: _record(0, 100), 1: running}, NOW, interval=1.0)
    assert world is not None and world["slowest"] == {"rank": 1, "samples_per_s": 32, "ratio": 0.32}
