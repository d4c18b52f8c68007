"""The pipeline's DataLoader: reports consumed batches to its sampler, times data waits, counts progress.

Worker side: imports torch, never the launch side.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Callable, Iterator
from typing import Any

from torch.utils.data import DataLoader

from launcher.hostinfo import usable_cpus
from launcher.runtime import progress
from launcher.runtime.data.sampling import ResumableDistributedSampler
from launcher.runtime.meters import METERS, batch_length
from launcher.runtime.seeding import WorkerSeeder


class WaitMeter:
    """Seconds spent waiting for batches and seconds of steps, summed over loaders."""

    def __init__(self) -> None:
        self.wait_seconds = 0.0
        self.step_seconds = 0.0

    def add(self, wait: float, step: float) -> None:
        self.wait_seconds += wait
        self.step_seconds += step

    @property
    def fraction(self) -> float:
        return self.wait_seconds / self.step_seconds if self.step_seconds > 0 else 0.0


def start_method_of(context: Any) -> str:
    """The start method DataLoader workers will use with this ``multiprocessing_context``.

    Reads the default without fixing it (``get_context()`` would), so the user can still set it.
    """
    if context is None:
        return multiprocessing.get_start_method(allow_none=True) or multiprocessing.get_all_start_methods()[0]
    if isinstance(context, str):
        return context
    return str(context.get_start_method())


class PipelineLoader(DataLoader[Any]):
    """A ``DataLoader`` that reports consumed batches to its sampler and times data waits."""

    def __init__(
        self,
        dataset: Any,
        *,
        resumable_sampler: ResumableDistributedSampler | None,
        seeder: WorkerSeeder,
        meter: WaitMeter,
        note: Callable[..., None],
        explained_workers: bool,
        **kwargs: Any,
    ) -> None:
        # Set before DataLoader.__init__, which calls check_worker_number_rationality.
        self.resumable_sampler = resumable_sampler
        self._seeder = seeder
        self._meter = meter
        self._note = note
        self._explained_workers = explained_workers
        super().__init__(dataset, sampler=resumable_sampler, worker_init_fn=seeder, **kwargs)

    def set_epoch(self, epoch: int) -> None:
        """Shuffle and seed workers for ``epoch`` (the pipeline's ``epochs()`` calls this)."""
        if self.resumable_sampler is not None:
            self.resumable_sampler.set_epoch(epoch)
        self._seeder.epoch = epoch

    def check_worker_number_rationality(self) -> None:
        # Replaces torch's multi-line "excessive worker" warning with one line, once.
        cpus = usable_cpus()
        if self.num_workers > cpus and not self._explained_workers:
            self._note(
                f"num_workers={self.num_workers} exceeds the {cpus} usable CPUs: right for data that waits "
                "on I/O, oversubscribing for CPU-bound data (measure: python -m launcher bench-data)"
            )
            self._explained_workers = True

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        sampler = self.resumable_sampler
        if sampler is not None and sampler.finished and sampler.shuffle and not sampler.eval:
            # The classic forgotten set_epoch (pytorch/pytorch#31771): say it once.
            self._note(
                "a training loader was read again in the same epoch, so in the same order: "
                "iterate epochs with `for epoch in ctx.epochs(n)`",
                logging.WARNING,
            )
        # Counted before the iterator starts the sampler's pass (which consumes a pending resume).
        expected = len(self) if sampler is not None else None
        return self._tracked(super().__iter__(), expected)

    def _tracked(self, batches: Iterator[Any], expected: int | None) -> Iterator[Any]:
        sampler = self.resumable_sampler
        per_batch = self.batch_size or 1
        count = 0
        last = time.perf_counter()
        while True:
            start = time.perf_counter()
            try:
                batch = next(batches)
            except StopIteration:
                if sampler is not None:
                    sampler.set_consumed(count * per_batch, finished=True)
                return
            now = time.perf_counter()
            self._meter.add(now - start, now - last)
            METERS.batch(batch_length(batch, per_batch), now - start)
            last = now
            count += 1
            progress.tick()  # loader iterations count as progress for the hang watchdog
            if sampler is not None:
                # The last batch finishes the pass even before the loop asks for one more.
                sampler.set_consumed(count * per_batch, finished=count == expected)
            yield batch
