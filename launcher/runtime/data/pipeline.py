"""Per-rank data loading: ``DataPipeline`` makes the job's DataLoaders and keeps their positions.

One pipeline per worker process, owned by the worker context. It builds
DataLoaders whose defaults come from the job's ``data:`` section (keyword
overrides win), each backed by a :class:`ResumableDistributedSampler` for this
rank (or, for an ``IterableDataset``, sharded by rank and worker: see
``sharding.py``), seeded from (seed, rank, worker, epoch), checked for
spawn-safety, and timed (the fraction of step time spent waiting for data).

Positions: a batch counts as consumed once it is handed to the training loop.
``state_dict()`` holds the epoch and, for every live loader with a sampler, the
global sample count consumed in that epoch. Loaders are matched on resume by
``name=`` if given, otherwise by creation order: ``outside/i`` for the i-th
loader made outside ``epochs()``, ``epoch/j`` for the j-th made inside the
current epoch. When every live loader has read its epoch to the end, the
state points at the start of the next epoch. ``IterableDataset`` loaders have
no saved position (a resumed epoch restarts their stream).

Eval loaders (``eval=True``) default to no shuffling and ``drop_last=False``,
and shard without padding; gather their outputs with
``gather.gather_for_metrics`` once after the pass (ranks may have different
batch counts, so a per-batch collective could hang).

Worker side: imports torch, never the launch side.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, IterableDataset

from launcher.errors import ConfigError
from launcher.hints import FIX_PICKLE
from launcher.runtime.data.loader import PipelineLoader, WaitMeter, start_method_of
from launcher.runtime.data.num_workers import auto_num_workers
from launcher.runtime.data.options import loader_options
from launcher.runtime.data.pickling import unpicklable_part
from launcher.runtime.data.sampling import ResumableDistributedSampler
from launcher.runtime.data.sharding import ShardedIterable
from launcher.runtime.log import get_logger
from launcher.runtime.meters import METERS
from launcher.runtime.seeding import WorkerSeeder, worker_seed
from launcher.schema import DataSettings

STATE_VERSION = 1
_LOADER_SEED_STREAM = 0xDA7A  # keeps the loaders' generator apart from the workers' seeds


class DataPipeline:
    """The worker's DataLoaders: defaults, sharding, seeding, epochs, positions and data-wait time."""

    def __init__(
        self,
        settings: DataSettings,
        *,
        rank: int,
        world_size: int,
        local_world_size: int,
        seed: int | None,
        device_type: str,
    ) -> None:
        self.settings = settings
        self.rank = rank
        self.world_size = world_size
        self.local_world_size = local_world_size
        self.seed = seed
        self.device_type = device_type
        self.meter = WaitMeter()
        self._epoch = 0
        self._in_epochs = False
        self._counts = {"outside": 0, "epoch": 0}
        self._loaders: dict[str, weakref.ref[PipelineLoader]] = {}
        self._pending: dict[str, dict[str, Any]] = {}
        self._pending_epoch: int | None = None
        self._logged: set[str] = set()

    # -- logging ---------------------------------------------------------------------------------
    def _note(self, line: str, level: int = logging.INFO, key: str | None = None) -> None:
        """Log ``line`` once per process (or once per ``key``: e.g. measured figures vary), on rank 0 only."""
        if self.rank == 0 and (key or line) not in self._logged:
            self._logged.add(key or line)
            get_logger().log(level, line)

    # -- loaders ---------------------------------------------------------------------------------
    def dataloader(
        self, dataset: Any, *, eval: bool = False, name: str | None = None, **overrides: Any
    ) -> DataLoader[Any]:
        """A DataLoader for this rank; settings from ``data:``, overridden by keyword arguments.

        ``name`` matches the loader to its saved position on resume (default: creation order).
        Keywords that are not ``data:`` settings pass to ``DataLoader`` unchanged.
        """
        options = loader_options(self.settings, overrides, eval=eval)
        batch_size, drop_last, even_shards = options.batch_size, options.drop_last, options.even_shards
        pin_memory = options.pin_memory
        prefetch_factor, persistent = options.prefetch_factor, options.persistent_workers

        iterable = isinstance(dataset, IterableDataset)
        sampler: ResumableDistributedSampler | None = None
        loader_dataset = dataset
        if iterable:
            loader_dataset = self._shard_stream(dataset, eval=eval)
            batches = _batches(_length(loader_dataset), batch_size, drop_last)
        else:
            sampler = ResumableDistributedSampler(
                dataset,
                num_replicas=self.world_size,
                rank=self.rank,
                shuffle=options.shuffle,
                seed=self.seed if self.seed is not None else 0,
                even_shards=even_shards,
                eval=eval,
            )
            sampler.set_epoch(self._epoch)
            self._note_uneven(len(dataset), even_shards, eval)
            batches = _batches(len(sampler), batch_size, drop_last)

        auto_workers = options.num_workers == "auto"
        if options.num_workers == "auto":
            choice = auto_num_workers(
                dataset, local_world_size=self.local_world_size, batch_size=batch_size, batches=batches
            )
            num_workers = choice.num_workers
            self._note(choice.reason, key="num_workers auto")
        else:
            num_workers = options.num_workers
        kwargs: dict[str, Any] = {
            "batch_size": batch_size,
            "drop_last": drop_last,
            "num_workers": num_workers,
            "pin_memory": self.device_type == "cuda" if pin_memory == "auto" else pin_memory,
        }
        if num_workers > 0:  # DataLoader rejects these without workers (auto may choose none)
            kwargs["prefetch_factor"] = prefetch_factor
            kwargs["persistent_workers"] = True if persistent == "auto" else persistent
        else:
            overrides.pop("multiprocessing_context", None)
        if self.seed is not None and "generator" not in overrides:
            # Own generator: loaders neither consume nor depend on the global torch RNG.
            generator = torch.Generator()
            generator.manual_seed(worker_seed(self.seed, self.rank, _LOADER_SEED_STREAM, 0))
            kwargs["generator"] = generator
        user_init = overrides.pop("worker_init_fn", None)
        if num_workers > 0:
            self._check_spawn_safe(dataset, overrides.get("collate_fn"), user_init, overrides)
        seeder = WorkerSeeder(self.seed, self.rank, user_init)
        seeder.epoch = self._epoch
        loader = PipelineLoader(
            loader_dataset,
            resumable_sampler=sampler,
            seeder=seeder,
            meter=self.meter,
            note=self._note,
            explained_workers=auto_workers,
            **kwargs,
            **overrides,
        )
        self._register(loader, name)
        return loader

    def _shard_stream(self, dataset: IterableDataset[Any], *, eval: bool) -> ShardedIterable:
        length = _length(dataset)
        limit = None
        if not eval and self.world_size > 1:
            if length is None:
                self._note(
                    "IterableDataset without __len__: ranks may get different numbers of items "
                    "(define __len__ so training shards can be evened)"
                )
            else:
                limit = length // self.world_size * self.world_size
                if limit != length:
                    self._note(
                        f"IterableDataset: {length - limit} of {length} items dropped per epoch so "
                        f"{self.world_size} ranks get {limit // self.world_size} each (no padding)"
                    )
        return ShardedIterable(dataset, rank=self.rank, world_size=self.world_size, limit=limit)

    def _note_uneven(self, length: int, even_shards: str, eval: bool) -> None:
        extra = -length % self.world_size if even_shards == "pad" else length % self.world_size
        if eval or self.world_size == 1 or extra == 0:
            return
        if even_shards == "pad":
            each = (length + extra) // self.world_size
            self._note(
                f"even_shards=pad: {length} samples over {self.world_size} ranks: {extra} repeated per epoch "
                f"so every rank gets {each}"
            )
        else:
            self._note(
                f"even_shards=drop: {length} samples over {self.world_size} ranks: {extra} dropped per epoch "
                f"so every rank gets {length // self.world_size}"
            )

    def _check_spawn_safe(
        self, dataset: Any, collate_fn: Any, worker_init_fn: Any, overrides: dict[str, Any]
    ) -> None:
        method = start_method_of(overrides.get("multiprocessing_context"))
        for role, obj in (
            ("dataset", dataset),
            ("collate_fn", collate_fn),
            ("worker_init_fn", worker_init_fn),
        ):
            if obj is None:
                continue
            bad = unpicklable_part(obj, role)
            if bad is None:
                continue
            path, what = bad
            if method == "fork":
                self._note(
                    f"{path} is a {what}, which cannot be pickled: DataLoader workers work under fork only "
                    "(macOS and Windows use spawn)"
                )
                return
            raise ConfigError(
                f"{path} is a {what}, which cannot be pickled for DataLoader workers started with {method}",
                f"{FIX_PICKLE}; or use num_workers=0",
            )

    def _register(self, loader: PipelineLoader, name: str | None) -> None:
        if name is None:
            scope = "epoch" if self._in_epochs else "outside"
            name = f"{scope}/{self._counts[scope]}"
            self._counts[scope] += 1
        self._loaders[name] = weakref.ref(loader)
        pending = self._pending.pop(name, None)
        if pending is not None and loader.resumable_sampler is not None:
            _load_position(loader.resumable_sampler, pending, name)

    def _live(self) -> dict[str, PipelineLoader]:
        live = {}
        for name, ref in list(self._loaders.items()):
            loader = ref()
            if loader is None:
                del self._loaders[name]
            else:
                live[name] = loader
        return live

    # -- epochs ----------------------------------------------------------------------------------
    @property
    def epoch(self) -> int:
        return self._epoch

    def epochs(self, total: int) -> Iterator[int]:
        """Epochs ``saved epoch .. total - 1``; sets the epoch on every loader, also ones made later."""
        self._in_epochs = True
        first = self._epoch
        try:
            for epoch in range(first, total):
                self._set_epoch(epoch)
                per_epoch = self._training_batches()
                METERS.set_epoch(epoch, (total - first) * per_epoch if per_epoch else None)
                yield epoch
            self._epoch = max(self._epoch, total)
        finally:
            self._in_epochs = False

    def _training_batches(self) -> int | None:
        """Batches per epoch of the first training loader with a length (what the progress line's ETA counts)."""
        for loader in self._live().values():
            sampler = loader.resumable_sampler
            if sampler is not None and not sampler.eval:
                try:
                    return len(loader)
                except TypeError:
                    return None
        return None

    def _set_epoch(self, epoch: int) -> None:
        if epoch != self._pending_epoch:
            self._pending = {k: v for k, v in self._pending.items() if not k.startswith("epoch/")}
        self._epoch = epoch
        self._counts["epoch"] = 0
        for loader in self._live().values():
            loader.set_epoch(epoch)

    # -- state -----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Epoch and loader positions as plain python types (``torch.load(weights_only=True)`` safe)."""
        samplers = {
            n: ld.resumable_sampler for n, ld in self._live().items() if ld.resumable_sampler is not None
        }
        epoch = self._epoch
        if samplers and all(s.finished and s.epoch == epoch for s in samplers.values()):
            epoch += 1  # every loader read this epoch to its end: resume at the next one
        positions = {n: s.state_dict() for n, s in samplers.items() if s.epoch == epoch}
        return {"version": STATE_VERSION, "epoch": epoch, "loaders": positions}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume: ``epochs()`` restarts at the saved epoch, loaders at their saved positions."""
        if state.get("version") != STATE_VERSION:
            raise ConfigError(f"data state has version {state.get('version')!r}, expected {STATE_VERSION}")
        self._epoch = int(state["epoch"])
        self._pending_epoch = self._epoch
        self._pending = {str(k): dict(v) for k, v in state["loaders"].items()}
        for name, loader in self._live().items():
            loader.set_epoch(self._epoch)
            pending = self._pending.pop(name, None)
            if pending is not None and loader.resumable_sampler is not None:
                _load_position(loader.resumable_sampler, pending, name)

    # -- metrics ---------------------------------------------------------------------------------
    @property
    def data_wait_fraction(self) -> float:
        """Fraction of step time (batch to batch) spent waiting for the next batch, all loaders."""
        return self.meter.fraction


def _load_position(sampler: ResumableDistributedSampler, state: dict[str, Any], name: str) -> None:
    try:
        sampler.load_state_dict(state)
    except ValueError as e:
        raise ConfigError(f"data loader {name!r}: {e}", "resume with the same dataset") from None


def _length(dataset: Any) -> int | None:
    try:
        return len(dataset)
    except TypeError:
        return None


def _batches(samples: int | None, batch_size: int, drop_last: bool) -> int | None:
    if samples is None:
        return None
    return samples // batch_size if drop_last else -(-samples // batch_size)


