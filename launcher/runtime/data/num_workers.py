"""``num_workers: auto``: the DataLoader worker count from evidence, not from a fixed rule.

The evidence: the CPUs this rank may use (``usable_cpus() // local ranks``)
and a probe of a few items in the main process, comparing CPU time with wall
time of ``__getitem__`` (or of the stream's ``next``). The rule:

* items so cheap that a batch loads in under 1 ms: 0 workers (the
  inter-process hand-off would cost more than it saves);
* CPU-bound items (CPU time >= 75% of wall time): one worker per usable CPU;
* items that wait (I/O, sleeps, remote reads): enough workers to keep the
  rank's CPUs busy, ``ceil(cpus / cpu_fraction)``, up to
  ``MAX_WORKERS_PER_CPU`` x cpus and at most ``MAX_WORKERS``;
* never more workers than batches per epoch, nor than the memory budget
  allows: ``MEMORY_SHARE`` of the available memory, split between local
  ranks, at ``WORKER_MEMORY_BYTES`` per worker (an estimate: a worker that
  imported torch).

Worker side: never imports the launch side.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sized
from dataclasses import dataclass
from typing import Any

from torch.utils.data import IterableDataset

from launcher.hostinfo import usable_cpus

CPU_BOUND_FRACTION = 0.75
CHEAP_BATCH_SECONDS = 1e-3
MAX_WORKERS_PER_CPU = 8
MAX_WORKERS = 32
WORKER_MEMORY_BYTES = 256 * 2**20
MEMORY_SHARE = 0.5
PROBE_ITEMS = 8
PROBE_SECONDS = 1.0


@dataclass(frozen=True)
class Probe:
    """Timing of ``items`` dataset reads in the main process (the first read, a warm-up, excluded)."""

    items: int
    wall_seconds: float
    cpu_seconds: float

    @property
    def seconds_per_item(self) -> float:
        return self.wall_seconds / self.items if self.items else 0.0

    @property
    def cpu_fraction(self) -> float:
        return min(1.0, self.cpu_seconds / self.wall_seconds) if self.wall_seconds > 0 else 1.0


@dataclass(frozen=True)
class WorkerChoice:
    num_workers: int
    reason: str  # one line


def probe_dataset(dataset: Any, *, max_items: int = PROBE_ITEMS, max_seconds: float = PROBE_SECONDS) -> Probe:
    """Read up to ``max_items`` items (spread over the dataset) in this process and time them."""
    if isinstance(dataset, IterableDataset):
        stream = iter(dataset)
        read = lambda _i: next(stream)  # noqa: E731
        indices: list[int] = list(range(max_items + 1))
    else:
        length = len(dataset) if isinstance(dataset, Sized) else max_items + 1
        count = min(length, max_items + 1)
        indices = [i * length // count for i in range(count)] if count else []
        read = dataset.__getitem__
    wall = cpu = 0.0
    items = 0
    for n, index in enumerate(indices):
        wall0, cpu0 = time.perf_counter(), time.process_time()
        try:
            read(index)
        except StopIteration:
            break
        if n == 0:
            continue  # the first read pays for lazy opening and caches
        wall += time.perf_counter() - wall0
        cpu += time.process_time() - cpu0
        items += 1
        if wall > max_seconds:
            break
    return Probe(items, wall, cpu)


def choose_num_workers(
    probe: Probe,
    *,
    cpus: int,
    local_world_size: int,
    batch_size: int,
    batches: int | None,
    available_memory: int | None,
) -> WorkerChoice:
    """The worker count for one rank and why (see the module docstring). Pure."""
    per_rank = max(1, cpus // max(1, local_world_size))
    share = f"{cpus} usable CPUs / {local_world_size} local rank{'s' if local_world_size > 1 else ''}"
    if probe.items == 0:
        return WorkerChoice(0, "num_workers=0 (auto): the dataset has too few items to probe")
    per_batch = probe.seconds_per_item * max(1, batch_size)
    timing = f"{probe.seconds_per_item * 1e3:.2f} ms/item, {probe.cpu_fraction:.0%} CPU"
    if per_batch < CHEAP_BATCH_SECONDS:
        return WorkerChoice(
            0, f"num_workers=0 (auto): a batch loads in {per_batch * 1e3:.2f} ms in-process ({timing})"
        )
    cap = min(MAX_WORKERS_PER_CPU * per_rank, MAX_WORKERS)
    if probe.cpu_fraction >= CPU_BOUND_FRACTION:
        workers, kind = per_rank, "CPU-bound"
    else:
        workers = min(cap, max(per_rank, math.ceil(per_rank / max(probe.cpu_fraction, 1e-6))))
        kind = f"I/O-bound, cap {cap}" if workers == cap else "I/O-bound"
    limits = []
    if batches is not None and workers > batches:
        workers = max(1, batches)
        limits.append(f"{batches} batches/epoch")
    if available_memory is not None:
        budget = int(available_memory * MEMORY_SHARE / max(1, local_world_size) // WORKER_MEMORY_BYTES)
        if workers > budget:
            workers = max(0, budget)
            limits.append(f"memory budget {available_memory * MEMORY_SHARE / 2**30:.1f} GiB")
    limited = f"; limited by {', '.join(limits)}" if limits else ""
    return WorkerChoice(workers, f"num_workers={workers} (auto): {kind} items ({timing}), {share}{limited}")


def available_memory() -> int | None:
    """Bytes of memory available to new processes, or None if unknown."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except (ImportError, OSError):
        return None


def auto_num_workers(
    dataset: Any, *, local_world_size: int, batch_size: int, batches: int | None
) -> WorkerChoice:
    """Probe ``dataset`` and read this host's facts, then choose (``choose_num_workers``)."""
    return choose_num_workers(
        probe_dataset(dataset),
        cpus=usable_cpus(),
        local_world_size=local_world_size,
        batch_size=batch_size,
        batches=batches,
        available_memory=available_memory(),
    )
