"""``CachedDataset``: a bounded, least-frequently-used cache in front of an expensive dataset.

What is per worker and what is shared:

* the cached items are **per process**: every DataLoader worker (and the main
  process) has its own cache, bounded by ``max_items`` / ``max_bytes`` each,
  so the memory used is up to ``(num_workers + 1) x`` the bound. A worker
  starts with an empty cache under every start method (a cache copied by fork
  or by pickling is dropped on first use in the new process). Only persistent
  workers (``persistent_workers=True``) keep their cache from one epoch to the
  next; the DataLoader sends a batch to the same worker each epoch only
  without shuffling, so with shuffling expect hits from frequently repeated
  items rather than from every item;
* the hit/miss/eviction **counters are shared**: they live in a small
  shared-memory tensor, one row per process (row 0: the main process, row
  ``1 + worker id``: a worker), so :meth:`CachedDataset.stats` in the main
  process sums what all workers did. Each row has a single writer, so no lock
  is needed.

Cache the expensive, deterministic part (decoding, reading) and apply random
augmentation after it: a cached item is returned as stored, so an item that
the caller changes in place changes in the cache too.

Worker side: never imports the launch side.
"""

from __future__ import annotations

import os
import sys
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset, get_worker_info

MAX_ROWS = 65  # the main process and 64 workers; higher worker ids share rows (their counts may race)
_HITS, _MISSES, _EVICTIONS = 0, 1, 2


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int
    evictions: int

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


def item_bytes(item: Any) -> int:
    """An estimate of the memory an item holds (tensors and arrays by their data)."""
    if isinstance(item, torch.Tensor):
        return item.element_size() * item.nelement()
    if isinstance(getattr(item, "nbytes", None), int):  # numpy arrays and the like
        return int(item.nbytes)
    if isinstance(item, (bytes, bytearray, str)):
        return len(item)
    if isinstance(item, (list, tuple)):
        return sum(item_bytes(x) for x in item) + sys.getsizeof(item)
    if isinstance(item, dict):
        return sum(item_bytes(v) for v in item.values()) + sys.getsizeof(item)
    return sys.getsizeof(item)


class LFUCache:
    """Bounded mapping that evicts the least frequently used key (ties: least recently used).

    O(1) per operation: keys are kept in one insertion-ordered bucket per use count.
    """

    def __init__(self, max_items: int | None, max_bytes: int | None) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.bytes = 0
        self._values: dict[Hashable, tuple[Any, int, int]] = {}  # key -> (value, uses, size)
        self._buckets: dict[int, OrderedDict[Hashable, None]] = {}
        self._min_uses = 0

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._values

    def clear(self) -> None:
        self._values.clear()
        self._buckets.clear()
        self.bytes = 0

    def get(self, key: Hashable) -> Any:
        """The value (counting a use); ``KeyError`` if absent."""
        value, uses, size = self._values[key]
        self._move(key, uses, uses + 1)
        self._values[key] = (value, uses + 1, size)
        return value

    def put(self, key: Hashable, value: Any) -> int:
        """Insert ``value`` (one use); returns how many keys were evicted to make room."""
        size = item_bytes(value) if self.max_bytes is not None else 0
        if self.max_bytes is not None and size > self.max_bytes:
            return 0  # larger than the whole cache: not kept
        evicted = 0
        while self._values and self._full(size):
            self._evict()
            evicted += 1
        if self.max_items == 0:
            return evicted
        self._values[key] = (value, 1, size)
        self._buckets.setdefault(1, OrderedDict())[key] = None
        self._min_uses = 1
        self.bytes += size
        return evicted

    def _full(self, incoming: int) -> bool:
        if self.max_items is not None and len(self._values) >= self.max_items:
            return True
        return self.max_bytes is not None and self.bytes + incoming > self.max_bytes

    def _move(self, key: Hashable, old: int, new: int) -> None:
        bucket = self._buckets[old]
        del bucket[key]
        if not bucket:
            del self._buckets[old]
            if self._min_uses == old:
                self._min_uses = new
        self._buckets.setdefault(new, OrderedDict())[key] = None

    def _evict(self) -> None:
        if self._min_uses not in self._buckets:  # an earlier eviction emptied the least-used bucket
            self._min_uses = min(self._buckets)
        bucket = self._buckets[self._min_uses]
        key, _ = bucket.popitem(last=False)
        if not bucket:
            del self._buckets[self._min_uses]
        _, _, size = self._values.pop(key)
        self.bytes -= size


class CachedDataset(Dataset[Any]):
    """Wraps a map-style dataset with a per-process LFU cache and shared hit-rate counters."""

    def __init__(self, dataset: Any, *, max_items: int | None = None, max_bytes: int | None = None) -> None:
        if max_items is None and max_bytes is None:
            raise ValueError("CachedDataset needs a bound: max_items or max_bytes")
        self.dataset = dataset
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._cache = LFUCache(max_items, max_bytes)
        self._owner = os.getpid()
        self._counters = torch.zeros((MAX_ROWS, 3), dtype=torch.int64).share_memory_()

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: Any) -> Any:
        if os.getpid() != self._owner:  # a new process (worker): its own, empty cache
            self._owner = os.getpid()
            self._cache = LFUCache(self.max_items, self.max_bytes)
        row = self._counters[_row()]
        if index in self._cache:
            row[_HITS] += 1
            return self._cache.get(index)
        row[_MISSES] += 1
        item = self.dataset[index]
        row[_EVICTIONS] += self._cache.put(index, item)
        return item

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"] = LFUCache(self.max_items, self.max_bytes)  # workers start empty
        return state

    def stats(self) -> CacheStats:
        """Hits, misses and evictions of all processes using this dataset (main and workers)."""
        hits, misses, evictions = (int(v) for v in self._counters.sum(dim=0))
        return CacheStats(hits, misses, evictions)

    def reset_stats(self) -> None:
        self._counters.zero_()

    @property
    def cached_items(self) -> int:
        """Items held by this process's cache."""
        return len(self._cache)


def _row() -> int:
    info = get_worker_info()
    return 0 if info is None else 1 + info.id % (MAX_ROWS - 1)
