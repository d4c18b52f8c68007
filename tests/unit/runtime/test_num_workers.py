"""``num_workers: auto``: decisions from (mocked) probe timings and host facts."""

from __future__ import annotations

import types
from typing import Any

import pytest
from torch.utils.data import Dataset, IterableDataset

from launcher.runtime.data import num_workers as workers
from launcher.runtime.data.num_workers import Probe, choose_num_workers

pytestmark = pytest.mark.timeout(30)

GIB = 2**30


class Clock:
    """A fake wall clock and CPU clock that the fake dataset advances."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0


class Timed(Dataset[int]):
    def __init__(self, clock: Clock, wall: float, cpu: float, first_wall: float = 0.0) -> None:
        self.clock, self.wall, self.cpu, self.first_wall = clock, wall, cpu, first_wall
        self.reads: list[int] = []

    def __len__(self) -> int:
        return 1000

    def __getitem__(self, i: int) -> int:
        self.clock.wall += self.first_wall if not self.reads else self.wall
        self.clock.cpu += self.cpu
        self.reads.append(i)
        return i


class TimedStream(IterableDataset[int]):
    def __init__(self, clock: Clock, wall: float, cpu: float) -> None:
        self.clock, self.wall, self.cpu = clock, wall, cpu

    def __iter__(self) -> Any:
        for i in range(100):
            self.clock.wall += self.wall
            self.clock.cpu += self.cpu
            yield i


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(
        workers, "time", types.SimpleNamespace(perf_counter=lambda: fake.wall, process_time=lambda: fake.cpu)
    )
    return fake


def auto(
    dataset: Any, monkeypatch: pytest.MonkeyPatch, *, cpus: int, local: int = 1, memory: int = 64 * GIB
) -> Any:
    monkeypatch.setattr(workers, "usable_cpus", lambda: cpus)
    monkeypatch.setattr(workers, "available_memory", lambda: memory)
    return workers.auto_num_workers(dataset, local_world_size=local, batch_size=32, batches=1000)


def test_cpu_bound_items_get_one_worker_per_usable_cpu(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    choice = auto(Timed(clock, wall=1e-3, cpu=0.95e-3), monkeypatch, cpus=6)
    assert choice.num_workers == 6
    assert "CPU-bound" in choice.reason and "6 usable CPUs" in choice.reason


def test_io_bound_items_get_more_workers_up_to_the_cap(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    choice = auto(Timed(clock, wall=2e-3, cpu=0.02e-3), monkeypatch, cpus=2)
    assert choice.num_workers == 2 * workers.MAX_WORKERS_PER_CPU
    assert "I/O-bound" in choice.reason
    assert auto(Timed(clock, wall=2e-3, cpu=0.02e-3), monkeypatch, cpus=16).num_workers == workers.MAX_WORKERS


def test_partly_waiting_items_get_enough_workers_to_fill_the_cpus(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    choice = auto(Timed(clock, wall=1e-3, cpu=0.25e-3), monkeypatch, cpus=2)
    assert choice.num_workers == 8  # each worker keeps a quarter of a CPU busy


def test_local_ranks_share_the_cpus(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    assert auto(Timed(clock, wall=1e-3, cpu=1e-3), monkeypatch, cpus=8, local=4).num_workers == 2
    assert auto(Timed(clock, wall=2e-3, cpu=0.0), monkeypatch, cpus=8, local=4).num_workers == 16


def test_cheap_items_load_in_the_main_process(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    choice = auto(Timed(clock, wall=1e-6, cpu=1e-6), monkeypatch, cpus=8)
    assert choice.num_workers == 0 and "ms in-process" in choice.reason


def test_memory_budget_limits_workers(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    memory = 6 * workers.WORKER_MEMORY_BYTES  # half of it: room for 3 workers
    choice = auto(Timed(clock, wall=2e-3, cpu=0.0), monkeypatch, cpus=2, memory=memory)
    assert choice.num_workers == 3 and "memory budget" in choice.reason


def test_the_first_read_is_a_warm_up(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    # A slow first open must not make CPU-bound data look I/O-bound.
    dataset = Timed(clock, wall=1e-3, cpu=1e-3, first_wall=1.0)
    assert auto(dataset, monkeypatch, cpus=4).num_workers == 4
    assert len(dataset.reads) == workers.PROBE_ITEMS + 1
    assert len(set(dataset.reads)) == len(dataset.reads)  # spread over the dataset


def test_streams_are_probed_by_iterating(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    assert auto(TimedStream(clock, wall=2e-3, cpu=0.0), monkeypatch, cpus=2).num_workers == 16


def test_never_more_workers_than_batches() -> None:
    probe = Probe(items=8, wall_seconds=8 * 2e-3, cpu_seconds=0.0)
    choice = choose_num_workers(
        probe, cpus=2, local_world_size=1, batch_size=32, batches=3, available_memory=None
    )
    assert choice.num_workers == 3 and "3 batches/epoch" in choice.reason


def test_the_reason_is_one_line() -> None:
    probe = Probe(items=8, wall_seconds=8e-3, cpu_seconds=8e-3)
    choice = choose_num_workers(
        probe, cpus=2, local_world_size=2, batch_size=4, batches=None, available_memory=GIB
    )
    assert "\n" not in choice.reason and choice.reason.startswith(f"num_workers={choice.num_workers} (auto)")
