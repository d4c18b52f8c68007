"""Sharding of an ``IterableDataset`` across ranks and DataLoader workers.

The rule: the stream's items are numbered 0, 1, 2, ... and dealt out
round-robin to ``world_size * num_workers`` shards; item ``i`` goes to rank
``i % world_size`` and, within that rank, to worker ``(i // world_size) %
num_workers``. Every item is delivered exactly once across the job.

If the dataset defines ``shard(index, count)``, it is called in each worker
(``index = rank + world_size * worker``, ``count = world_size * num_workers``)
and must then yield only its own items (e.g. by opening only its files); the
wrapper does no filtering. Otherwise every worker iterates the whole stream
and keeps its own items: nothing is delivered twice, but items are *produced*
by every worker, so a stream that is expensive to read should implement
``shard``.

Training with a known length (``len(dataset)``) cuts the stream to a multiple
of the world size so every rank gets the same number of items; a stream
cannot be padded without reading items twice, so ``even_shards="pad"`` also
cuts for iterable datasets (logged by the pipeline).

Open files lazily in ``__iter__`` (in the worker), not in ``__init__``: a
handle opened in the parent does not survive pickling to a spawned worker.

Worker side: imports torch, never the launch side.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from torch.utils.data import IterableDataset, get_worker_info


class ShardedIterable(IterableDataset[Any]):
    """Yields this rank's and this worker's items of ``dataset`` (see the module docstring)."""

    def __init__(
        self, dataset: IterableDataset[Any], *, rank: int, world_size: int, limit: int | None
    ) -> None:
        self.dataset = dataset
        self.rank = rank
        self.world_size = world_size
        self.limit = limit  # global items to use (a multiple of world_size), None: all

    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        index, count = self.rank + self.world_size * worker, self.world_size * workers
        shard = getattr(self.dataset, "shard", None)
        if callable(shard):
            shard(index, count)
            # The dataset yields only its own items; the limit is counted in its own items.
            own_limit = None if self.limit is None else len(range(index, self.limit, count))
            return itertools.islice(iter(self.dataset), own_limit)
        return itertools.islice(iter(self.dataset), index, self.limit, count)

    def __len__(self) -> int:
        """This rank's items (what a DataLoader over this wrapper will yield, all workers together)."""
        total = self.limit if self.limit is not None else len(self.dataset)  # type: ignore[arg-type]
        return len(range(self.rank, total, self.world_size))
