"""Seeds of DataLoader workers: each from (seed, rank, worker id, epoch).

``WorkerSeeder`` is the loader's ``worker_init_fn``: it seeds python
``random``, numpy and torch in the worker, then calls the user's own
``worker_init_fn``. It is a module-level class so it pickles under spawn. The
loader sets ``epoch`` before it starts workers; persistent workers are started
once, so they are seeded with the epoch they started in and their random
streams simply continue in later epochs.

Without a job seed, torch's own per-worker seeds are kept (they differ per
worker and per run) and only the user's function is called.

Worker side: never imports the launch side.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

import torch


def worker_seed(seed: int, rank: int, worker_id: int, epoch: int) -> int:
    """A 63-bit seed hashed from the four numbers: no simple collisions (seed + worker would have)."""
    text = f"{seed}:{rank}:{worker_id}:{epoch}".encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") >> 1


def seed_everything(seed: int) -> None:
    """Seed python ``random``, numpy (if installed: torch does not require it) and torch."""
    random.seed(seed)
    try:
        import numpy

        numpy.random.seed(seed % 2**32)
    except ImportError:
        pass
    torch.manual_seed(seed)


class WorkerSeeder:
    """``worker_init_fn`` that seeds the worker, then chains the user's ``worker_init_fn``."""

    def __init__(self, seed: int | None, rank: int, user_fn: Callable[[int], object] | None) -> None:
        self.seed = seed
        self.rank = rank
        self.user_fn = user_fn
        self.epoch = 0

    def __call__(self, worker_id: int) -> None:
        if self.seed is not None:
            seed_everything(worker_seed(self.seed, self.rank, worker_id, self.epoch))
        if self.user_fn is not None:
            self.user_fn(worker_id)
