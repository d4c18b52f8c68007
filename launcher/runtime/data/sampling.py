"""A resumable distributed sampler: ``DistributedSampler``'s order, plus a saved position.

The epoch's global order is ``DistributedSampler``'s: a permutation of the
whole dataset drawn from ``seed + epoch`` (identical on every rank), padded by
wrapping (``even_shards="pad"``) or cut (``"drop"``) to a multiple of the world
size, and dealt out round-robin: rank ``r`` gets global positions ``r, r + W,
r + 2W, ...``. Started from position 0, the indices are exactly those of
``torch.utils.data.DistributedSampler`` (a test checks it).

Resuming. Training ranks step in lockstep, so after every rank consumed ``k``
samples the first ``k * W`` positions of the global order are done: that count
(capped at the dataset length) is the saved position. A resumed sampler
continues with the rest of the same epoch's permutation, ``perm[consumed:]``,
padded or cut for the *current* world size (padding again wraps from the
permutation's start) and dealt out round-robin. With the same world size this
is exactly the remainder of each rank's shard, in order; with another world
size every remaining sample is seen exactly once, but which rank sees it (and
so the per-rank order) changes. Eval mode never pads or drops: rank ``r``
gets ``perm[r::W]``, so ranks may differ by one sample.

The sampler does not count what it yields (DataLoader workers prefetch
indices ahead of use); the loader reports consumed samples with
:meth:`ResumableDistributedSampler.set_consumed`.

Worker side: imports torch, never the launch side.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sized
from typing import Any, Literal

import torch
from torch.utils.data import DistributedSampler

EvenShards = Literal["pad", "drop"]


def epoch_permutation(num_samples: int, *, seed: int, epoch: int, shuffle: bool) -> list[int]:
    """The global order of one epoch: ``DistributedSampler``'s permutation (same on every rank)."""
    if not shuffle:
        return list(range(num_samples))
    generator = torch.Generator()
    generator.manual_seed(seed + epoch)
    return torch.randperm(num_samples, generator=generator).tolist()


def global_order(
    perm: list[int], *, start: int, world_size: int, even_shards: EvenShards | None
) -> list[int]:
    """``perm[start:]`` padded by wrapping from ``perm[0]`` or cut to a multiple of ``world_size``.

    ``even_shards=None`` (eval) leaves the length as it is.
    """
    rest = perm[start:]
    if even_shards is None or not rest:
        return rest
    if even_shards == "drop":
        return rest[: len(rest) // world_size * world_size]
    padding = -len(rest) % world_size
    repeats = math.ceil(padding / len(perm)) if padding else 0
    return rest + (perm * repeats)[:padding]


class ResumableDistributedSampler(DistributedSampler[int]):
    """``DistributedSampler`` with ``even_shards``, an eval mode and a resumable position.

    ``even_shards`` ("pad" or "drop") makes every rank's shard the same length in
    training; it is separate from the DataLoader's ``drop_last`` (the last partial
    batch). ``eval=True`` shards without padding or dropping.
    """

    def __init__(
        self,
        dataset: Sized,
        *,
        num_replicas: int,
        rank: int,
        shuffle: bool = True,
        seed: int = 0,
        even_shards: EvenShards = "pad",
        eval: bool = False,
    ) -> None:
        if even_shards not in ("pad", "drop"):
            raise ValueError(f"even_shards must be 'pad' or 'drop', got {even_shards!r}")
        super().__init__(
            dataset,  # type: ignore[arg-type]
            num_replicas=num_replicas,
            rank=rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=even_shards == "drop",
        )
        self.even_shards: EvenShards = even_shards
        self.eval = eval
        self._offset = 0  # global position this pass starts from (set by load_state_dict)
        self._resume_pending = False  # the next __iter__ starts from _offset
        self._consumed = 0  # samples of this rank's shard consumed in the current pass
        self._pass_length = 0  # length of this rank's shard in the current pass
        self._finished = False  # the current pass was read to its end

    @property
    def dataset_length(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def _shards(self, start: int) -> list[int]:
        perm = epoch_permutation(self.dataset_length, seed=self.seed, epoch=self.epoch, shuffle=self.shuffle)
        order = global_order(
            perm,
            start=start,
            world_size=self.num_replicas,
            even_shards=None if self.eval else self.even_shards,
        )
        return order[self.rank :: self.num_replicas]

    def _next_start(self) -> int:
        return self._offset if self._resume_pending else 0

    def __iter__(self) -> Iterator[int]:
        start = self._next_start()
        self._offset, self._resume_pending = start, False
        indices = self._shards(start)
        self._consumed, self._pass_length, self._finished = 0, len(indices), False
        return iter(indices)

    def __len__(self) -> int:
        remaining = self.dataset_length - self._next_start()
        if self.eval:
            return len(range(self.rank, remaining, self.num_replicas))
        if self.even_shards == "drop":
            return remaining // self.num_replicas
        return math.ceil(remaining / self.num_replicas)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch; a new epoch starts at its beginning (a pending resume is dropped)."""
        if epoch != self.epoch:
            self._offset, self._resume_pending = 0, False
            self._consumed, self._pass_length, self._finished = 0, 0, False
        self.epoch = epoch

    def set_consumed(self, samples: int, *, finished: bool = False) -> None:
        """Record how many samples of this rank's current pass the training loop has received."""
        self._consumed = min(samples, self._pass_length)
        self._finished = finished

    @property
    def finished(self) -> bool:
        """The current pass was read to its end (a new pass has not started)."""
        return self._finished

    def samples_consumed(self) -> int:
        """Global samples of this epoch consumed by all ranks together (lockstep assumed)."""
        if self._resume_pending:
            return self._offset
        return min(self._offset + self._consumed * self.num_replicas, self.dataset_length)

    def state_dict(self) -> dict[str, Any]:
        """Plain python state: the epoch and the global position in it."""
        return {
            "epoch": self.epoch,
            "samples_consumed": self.samples_consumed(),
            "dataset_length": self.dataset_length,
            "world_size": self.num_replicas,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a saved position at the next ``__iter__`` (see the module docstring)."""
        if int(state["dataset_length"]) != self.dataset_length:
            raise ValueError(
                f"saved position is for a dataset of {state['dataset_length']} samples, "
                f"this one has {self.dataset_length}"
            )
        self.epoch = int(state["epoch"])
        self._offset = min(int(state["samples_consumed"]), self.dataset_length)
        self._resume_pending = True
        self._consumed, self._pass_length, self._finished = 0, 0, False
