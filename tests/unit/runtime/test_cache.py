"""The LFU caching dataset: eviction order, bounds, hit rate, and counters shared with workers."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from launcher.runtime.cache import CachedDataset, LFUCache

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("no_leftover_children")]


class Counting(Dataset[torch.Tensor]):
    def __init__(self, n: int = 10) -> None:
        self.n = n
        self.reads = 0

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        self.reads += 1
        return torch.full((4,), i, dtype=torch.int64)  # 32 bytes


def test_evicts_the_least_frequently_used_then_the_least_recently_used() -> None:
    cache = LFUCache(max_items=3, max_bytes=None)
    for key in "abc":
        cache.put(key, key)
    cache.get("a")
    cache.get("a")
    cache.get("b")  # uses: a 3, b 2, c 1
    assert cache.put("d", "d") == 1
    assert "c" not in cache and {"a", "b", "d"} <= {k for k in "abcd" if k in cache}
    cache.get("d")  # uses: a 3, b 2, d 2: b is older among the least used
    cache.put("e", "e")
    assert "b" not in cache and "d" in cache and "a" in cache


def test_byte_bound_keeps_the_total_under_the_limit() -> None:
    cache = LFUCache(max_items=None, max_bytes=100)
    for i in range(10):
        cache.put(i, torch.zeros(4, dtype=torch.int64))  # 32 bytes each
        assert cache.bytes <= 100
    assert len(cache) == 3
    assert cache.put("huge", torch.zeros(100, dtype=torch.int64)) == 0 and "huge" not in cache


def test_hit_rate_and_reads_in_one_process() -> None:
    inner = Counting()
    cached = CachedDataset(inner, max_items=5)
    for _ in range(3):
        for i in range(4):
            assert torch.equal(cached[i], torch.full((4,), i))
    stats = cached.stats()
    assert (stats.hits, stats.misses, stats.evictions) == (8, 4, 0)
    assert stats.hit_rate == pytest.approx(8 / 12)
    assert inner.reads == 4
    for i in range(4, 10):  # six new items into five slots
        cached[i]
    assert cached.stats().evictions == 5 and cached.cached_items == 5


def test_a_bound_is_required() -> None:
    with pytest.raises(ValueError, match="bound"):
        CachedDataset(Counting())


def test_pickled_copies_start_empty() -> None:
    cached = CachedDataset(Counting(), max_items=5)
    cached[0]
    assert pickle.loads(pickle.dumps(cached)).cached_items == 0


def test_two_workers_keep_their_own_caches_and_share_the_counters() -> None:
    cached = CachedDataset(Counting(20), max_items=20)
    for i in range(20):
        cached[i]  # warms the main process's cache only
    cached.reset_stats()
    loader = DataLoader(
        cached, batch_size=2, num_workers=2, persistent_workers=True, multiprocessing_context="fork"
    )
    for epoch in range(3):
        assert sorted(int(x) for b in loader for x in b[:, 0]) == list(range(20))
        stats = cached.stats()
        # Epoch 0 misses everything in the workers despite the parent's cache; later epochs hit.
        assert (stats.hits, stats.misses) == (20 * epoch, 20)
    rows = cached._counters  # rows 1 and 2: the two workers
    assert int(rows[1].sum()) > 0 and int(rows[2].sum()) > 0 and int(rows[0].sum()) == 0
    del loader
