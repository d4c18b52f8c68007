"""``map_in_threads``: order and errors, nesting, and one pool per process (never one inherited across fork)."""

from __future__ import annotations

import os
import threading

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from launcher.runtime.data import preprocess
from launcher.runtime.data.preprocess import map_in_threads

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("no_leftover_children")]


def where(item: int) -> tuple[int, int, str]:
    return item, os.getpid(), threading.current_thread().name


def test_results_come_in_order_from_the_pools_threads():
    results = map_in_threads(where, range(50), max_workers=3)
    assert [item for item, _, _ in results] == list(range(50))
    assert {pid for _, pid, _ in results} == {os.getpid()}
    names = {name for _, _, name in results}
    assert names and all(name.startswith("launcher-preprocess") for name in names) and len(names) <= 3


def test_the_first_error_is_raised_in_the_caller():
    def fails_on_three(item: int) -> int:
        if item == 3:
            raise KeyError(item)
        return item

    with pytest.raises(KeyError):
        map_in_threads(fails_on_three, range(8))
    with pytest.raises(ValueError, match="max_workers must be >= 1"):
        map_in_threads(where, [1], max_workers=0)


def test_one_worker_or_one_item_runs_in_the_calling_thread():
    me = threading.current_thread().name
    assert [name for _, _, name in map_in_threads(where, range(4), max_workers=1)] == [me] * 4
    assert map_in_threads(where, [7])[0][2] == me


def test_a_call_from_a_pool_thread_runs_serially_instead_of_waiting_on_its_own_pool():
    def inner(item: int) -> list[str]:
        return [name for _, _, name in map_in_threads(where, range(item, item + 3), max_workers=2)]

    outer = map_in_threads(inner, range(4), max_workers=2)  # 2 threads, each calling into the same pool
    assert all(len(set(names)) == 1 and names[0].startswith("launcher-preprocess") for names in outer)


class ThreadedBatches(Dataset[tuple[int, int, str]]):
    """A dataset whose batches are prepared by ``map_in_threads`` in ``__getitems__``."""

    def __len__(self) -> int:
        return 16

    def __getitem__(self, index: int) -> tuple[int, int, str]:
        return where(index)

    def __getitems__(self, indices: list[int]) -> list[tuple[int, int, str]]:
        return map_in_threads(where, indices, max_workers=2)


def collate(samples: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    return samples


def test_forked_dataloader_workers_make_their_own_pools():
    map_in_threads(where, range(4), max_workers=2)  # the parent's pool exists before the fork
    parent_pool = preprocess._pools[2]
    loader = DataLoader(ThreadedBatches(), batch_size=4, num_workers=2, multiprocessing_context="fork",
                        collate_fn=collate)
    samples = [sample for batch in loader for sample in batch]
    del loader
    assert sorted(item for item, _, _ in samples) == list(range(16))
    pids = {pid for _, pid, _ in samples}
    assert len(pids) == 2 and os.getpid() not in pids
    assert all(name.startswith("launcher-preprocess") for _, _, name in samples)  # ran in each worker's own pool
    assert preprocess._pools[2] is parent_pool  # the parent's pool is untouched


def test_tensors_made_in_threads_stay_on_the_cpu():
    tensors = map_in_threads(lambda i: torch.full((2,), float(i)), range(6))
    assert torch.equal(torch.stack(tensors)[:, 0], torch.arange(6.0))
    assert all(t.device.type == "cpu" for t in tensors)
