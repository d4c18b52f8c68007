"""Per-sample CPU work (decode, augment) spread over a thread pool of the process that runs it.

``map_in_threads(fn, items)`` is ``[fn(item) for item in items]``, run by a
``ThreadPoolExecutor``: results in order, the first error raised in the caller.
Call it where a batch of samples is prepared: a dataset's ``__getitems__``
(which the DataLoader calls with a whole batch of indices), a ``collate_fn``,
or ``__getitem__`` for work that splits (the crops of one image). It works in
the training process (``num_workers=0``) and inside DataLoader workers alike.

Threads pay off only when ``fn`` releases the GIL most of its time: file and
network reads, PIL decode and resize, numpy, zlib, torch CPU ops. Pure-Python
work holds the GIL: give it processes instead (``data.num_workers``).
docs/preprocessing.md has the measured numbers (benchmarks/preprocess_pool.py).

Each process makes its own pools, lazily at first use: a pool inherited
through fork has no threads in the child (only the thread that forked
survives), so a forked DataLoader worker never uses its parent's; a call from
a pool thread itself runs serially instead of waiting on its own pool. The
threads must never call ``torch.cuda`` (``launcher check`` warns when it sees
one): move tensors to the GPU in the training thread. Worker side: never
imports the launch side.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_MAX_WORKERS = 4  # per process: a DataLoader worker with 4 threads on a shared machine is plenty

_pools: dict[int, ThreadPoolExecutor] = {}  # max_workers -> this process's pool
_lock = threading.Lock()
_helper = threading.local()  # .active: this thread is one of the pools' threads


def _forget_inherited_pools() -> None:
    """In a forked child: the parent's pools have no threads here, and the lock may have been held."""
    global _lock
    _pools.clear()
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # not on Windows, which never forks
    os.register_at_fork(after_in_child=_forget_inherited_pools)


def _mark_helper() -> None:
    _helper.active = True


def _pool(max_workers: int) -> ThreadPoolExecutor:
    with _lock:
        pool = _pools.get(max_workers)
        if pool is None:
            pool = _pools[max_workers] = ThreadPoolExecutor(
                max_workers, thread_name_prefix="launcher-preprocess", initializer=_mark_helper)
        return pool


def map_in_threads(fn: Callable[[T], R], items: Iterable[T], max_workers: int = DEFAULT_MAX_WORKERS) -> list[R]:
    """``[fn(item) for item in items]`` in this process's pool of ``max_workers`` threads, in order."""
    if max_workers < 1:
        raise ValueError(f"map_in_threads: max_workers must be >= 1, got {max_workers}")
    work = list(items)
    if max_workers == 1 or len(work) <= 1 or getattr(_helper, "active", False):
        return [fn(item) for item in work]
    return list(_pool(max_workers).map(fn, work))
