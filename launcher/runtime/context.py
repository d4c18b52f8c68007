"""The worker's view of the job: ranks, device, process group, and helpers.

``init()`` works under this launcher, under torchrun, and under plain
``python`` (a world of one). It is idempotent and adopts a process group that
another library already created. Function entrypoints receive the same object.
Never imports the launch side.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist

from launcher.errors import ConfigError
from launcher.runtime import progress
from launcher.runtime.meters import METERS
from launcher.runtime.seeding import seed_everything
from launcher.schema import JobConfig

if TYPE_CHECKING:
    from launcher.runtime.amp import Amp, Scaler
    from launcher.runtime.checkpoint.checkpointer import Checkpointer
    from launcher.runtime.data.pipeline import DataPipeline

_job_config: JobConfig | None = None
_job_backend: str | None = None  # the launcher's choice; None under torchrun or plain python
_context: Context | None = None
_lock = threading.Lock()


def finish_checkpoints() -> None:
    """The bootstrap, when the user's code returned: the last save is written (or its error raised) before
    the rank reports success, also when the user's script leaves ``ctx.close()`` to the end of the process."""
    if _context is not None:
        _context.finish_checkpoints()


def install_job(config: JobConfig, backend: str) -> None:
    """Called by the bootstrap: the job's settings and the plan's backend, for ``init()`` to use."""
    global _job_config, _job_backend
    _job_config, _job_backend = config, backend


@dataclass(frozen=True)
class WorldView:
    """This process's place in the job, read from the torchrun environment."""

    rank: int
    local_rank: int
    world_size: int
    local_world_size: int
    node_rank: int
    launched: bool  # False under plain python: a world of one


def read_world(environ: dict[str, str] | os._Environ[str]) -> WorldView:
    if "RANK" not in environ or "WORLD_SIZE" not in environ:
        return WorldView(0, 0, 1, 1, 0, launched=False)
    rank = int(environ["RANK"])
    world_size = int(environ["WORLD_SIZE"])
    return WorldView(
        rank=rank,
        local_rank=int(environ.get("LOCAL_RANK", rank)),
        world_size=world_size,
        local_world_size=int(environ.get("LOCAL_WORLD_SIZE", world_size)),
        node_rank=int(environ.get("GROUP_RANK", 0)),
        launched=True,
    )


class Context:
    """One per process; made by ``init()``."""

    def __init__(self, world: WorldView, backend: str, device: torch.device, config: JobConfig,
                 owns_group: bool) -> None:
        self._world = world
        self.backend = backend
        self.device = device
        self.config = config
        self._owns_group = owns_group
        self._closed = False
        self._pipeline: DataPipeline | None = None
        self._checkpointer: Checkpointer | None = None
        self._amp: Amp | None = None

    rank = property(lambda self: self._world.rank)
    local_rank = property(lambda self: self._world.local_rank)
    world_size = property(lambda self: self._world.world_size)
    local_world_size = property(lambda self: self._world.local_world_size)
    node_rank = property(lambda self: self._world.node_rank)

    @property
    def is_main(self) -> bool:
        return self._world.rank == 0

    @property
    def seed(self) -> int | None:
        return self.config.seed

    # -- data (launcher.runtime.data) -------------------------------------------

    @property
    def data(self) -> DataPipeline:
        """This rank's data pipeline: every loader made by ``dataloader``, their epoch and positions."""
        if self._pipeline is None:
            from launcher.runtime.data.pipeline import DataPipeline

            self._pipeline = DataPipeline(self.config.data, rank=self.rank, world_size=self.world_size,
                                          local_world_size=self.local_world_size, seed=self.seed,
                                          device_type=self.device.type)
        return self._pipeline

    def dataloader(self, dataset: Any, *, eval: bool = False, **overrides: Any) -> Any:
        """A DataLoader over this rank's shard; settings default to the job's ``data:`` section."""
        return self.data.dataloader(dataset, eval=eval, **overrides)

    def epochs(self, total: int) -> Iterator[int]:
        """Epochs 0..total-1 (from the saved one after a resume); sets the epoch on every loader."""
        return self.data.epochs(total)

    def gather(self, tensor: torch.Tensor, *, num_samples: int | None = None) -> torch.Tensor:
        """Every rank's values of one evaluation pass, in sample order, padding dropped."""
        from launcher.runtime.data.gather import gather_for_metrics

        return gather_for_metrics(tensor, num_samples=num_samples)

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs from the context: the epoch and every loader's position."""
        return {"data": self.data.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.data.load_state_dict(state["data"])

    # -- mixed precision (launcher.runtime.amp) ----------------------------------

    @property
    def amp(self) -> Amp:
        """The job's ``amp:`` settings on this rank's device."""
        if self._amp is None:
            from launcher.runtime.amp import Amp

            self._amp = Amp(self.config.amp, self.device, rank=self.rank)
        return self._amp

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """``torch.autocast(device, amp.dtype)`` when ``amp.enabled``, a null context otherwise."""
        return self.amp.autocast()

    def grad_scaler(self) -> Scaler:
        """The job's loss scaler: a GradScaler for float16 on CUDA, else a no-op with the same methods.
        Pass it to the checkpointer's ``save``/``maybe_save``/``restore`` as ``scaler=``."""
        return self.amp.grad_scaler()

    # -- checkpoints (launcher.runtime.checkpoint) -------------------------------

    def checkpointer(self, **overrides: Any) -> Checkpointer:
        """Saves and restores the training state; settings from ``checkpoint:``, keywords (field names) override.

        One per job, made by every rank at the same point (it forms a group of its own); later calls return it.
        """
        if self._checkpointer is None:
            from launcher.runtime.checkpoint.checkpointer import Checkpointer, checkpoint_settings

            settings = checkpoint_settings(self.config.checkpoint, overrides)
            self._checkpointer = Checkpointer(
                settings, rank=self.rank, world_size=self.world_size, state=self.state_dict,
                load_state=self.load_state_dict,
                launcher_requests=_job_config is not None and settings.stop_signal is not None)
        elif overrides:
            raise ConfigError("checkpointer(): the job's checkpointer was made already; keywords go to the first call",
                              "call ctx.checkpointer(...) once and keep the object")
        return self._checkpointer

    def finish_checkpoints(self) -> None:
        """Wait for the save in flight and stop the writer; its error, if it failed, is raised here."""
        if self._checkpointer is not None:
            checkpointer, self._checkpointer = self._checkpointer, None
            checkpointer.close()

    # -- progress and output ---------------------------------------------------

    def step(self, steps: int = 1, *, samples: int | None = None) -> None:
        """Mark progress (a training step): the hang watchdog counts from the latest one, the monitor counts
        steps (and ``samples``, when the loop knows them better than the context's loaders)."""
        progress.tick(steps)
        METERS.step(steps, samples)

    def log(self, **values: Any) -> None:
        """Values the monitor records with its next interval (``loss=..., lr=...``): numbers and CPU tensors are
        read now; a CUDA tensor is read by this thread in a later ``log``/``step``, at most once per interval."""
        METERS.log(values)

    def set_total_steps(self, total: int) -> None:
        """The steps this run will take, for the progress line's ETA (``ctx.epochs`` tells it otherwise)."""
        METERS.set_total_steps(total)

    def print(self, *args: Any, **kwargs: Any) -> None:
        """``print`` on rank 0 only."""
        if self.is_main:
            kwargs.setdefault("flush", True)
            builtins.print(*args, **kwargs)

    def barrier(self) -> None:
        if dist.is_initialized() and self.world_size > 1:
            if self.backend == "nccl":
                dist.barrier(device_ids=[self.device.index or 0])
            else:
                dist.barrier()

    @contextlib.contextmanager
    def main_process_first(self) -> Iterator[None]:
        """The local rank 0 of each node runs the block first, then the others."""
        first = self.local_rank == 0
        if not first:
            self.barrier()
        yield
        if first:
            self.barrier()

    def close(self) -> None:
        """Finish the checkpointer's last save, destroy the process group this context created (also at exit)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.finish_checkpoints()
        finally:
            self._close_group()

    def _close_group(self) -> None:
        global _context
        if self._owns_group and dist.is_initialized():
            dist.destroy_process_group()
        with _lock:
            if _context is self:
                _context = None

    def __repr__(self) -> str:
        return (f"Context(rank={self.rank}, local_rank={self.local_rank}, world_size={self.world_size}, "
                f"backend={self.backend!r}, device={self.device})")


INIT_BARRIER_VARIABLE = "TORCH_DIST_INIT_BARRIER"


@contextlib.contextmanager
def _barrier_after_init() -> Iterator[None]:
    """torch's store barrier at the end of ``init_process_group`` (unless the user set the variable): no rank
    returns before every rank has formed the group. Without it a gloo rank that connected first may go on,
    and end (a short function, a test's body) and close its sockets while a peer still accepts its
    connection: the peer fails with 'connectFullMesh failed ... Connection closed by peer'."""
    if INIT_BARRIER_VARIABLE in os.environ:
        yield
        return
    os.environ[INIT_BARRIER_VARIABLE] = "1"
    try:
        yield
    finally:
        os.environ.pop(INIT_BARRIER_VARIABLE, None)


def _auto_backend(world: WorldView) -> str:
    if torch.cuda.is_available() and world.local_world_size <= torch.cuda.device_count():
        return "nccl"
    return "gloo"


def init(backend: str | None = None) -> Context:
    """The job's context: joins (or adopts) the process group. Idempotent."""
    global _context
    with _lock:
        if _context is not None:
            return _context
        config = _job_config or JobConfig()
        world = read_world(os.environ)
        owns_group = not dist.is_initialized()
        if not owns_group:
            chosen = str(dist.get_backend())
        else:
            requested = backend or _job_backend or config.world.backend
            chosen = _auto_backend(world) if requested == "auto" else requested
        if chosen == "nccl":
            torch.cuda.set_device(world.local_rank)
            device = torch.device("cuda", world.local_rank)
        else:
            device = torch.device("cpu")
        if owns_group:
            if world.launched:
                with _barrier_after_init():
                    dist.init_process_group(chosen, init_method="env://")
            else:  # plain python: a world of one with an in-process store, no port at all
                dist.init_process_group(chosen, store=dist.HashStore(), rank=0, world_size=1)  # type: ignore[attr-defined]
        if config.seed is not None:
            seed_everything(config.seed)
        if config.data.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
        _context = Context(world, chosen, device, config, owns_group)
        atexit.register(_context.close)
        return _context
