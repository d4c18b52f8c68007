"""``ctx.checkpointer()``: save the whole training state now and then, barely pausing training, and resume from it.

In the loop, every rank calls ``maybe_save(step, model=..., optimizer=...)``
after each step (or ``save(...)`` to save now), at the same steps, like a
collective; ``restore(model=..., optimizer=...)`` at the start loads the
checkpoint that ``checkpoint.resume`` names (``auto``: the latest complete one
in ``checkpoint.dir``, also after a restart) and says which step it was.

What a save holds (``layout.py``): rank 0 writes what every rank holds alike
(the model unwrapped from DDP, optimizer, LR scheduler, AMP grad scaler, the
user's ``extra``); every rank writes its own part (the RNG states of python,
numpy, torch CPU and every CUDA device, and ``ctx.state_dict()``: the epoch and
every loader's position). Only plain containers and tensors, so loading is
``torch.load(weights_only=True)``. On the same world size each rank gets its
own part back exactly; on another one the parts every rank shares (and rank
0's loader positions, which are global) load, each rank keeps its seeded RNG,
and one log line says so.

The training thread only takes a snapshot (``snapshot.py``: tensors copied to
CPU buffers); the writer (``writer.py``) serialises and writes. With ``async``,
the CPU tensors of the optimizer's parameters and state are copied by the
writer while the next forward and backward run, and the next optimizer step
(any ``torch.optim`` optimizer's: a global step pre-hook) waits for that copy.
A save due while the previous one is still being written waits for it. Ranks
agree through ``agreement.py``.

Save and stop: under the launcher, ``maybe_save`` also saves when the launcher
asks (``checkpoint.stop_signal``, e.g. SLURM's preemption notice); every rank
saves at the step rank 0 names, waits until the checkpoint is complete (rank 0)
or its part written (the others), and leaves with ``StopAfterCheckpoint``, a
``SystemExit(0)``: ``finally`` blocks run, the rank exits 0, and the launcher
exits 75. Worker side: never imports the launch side.
"""

from __future__ import annotations

import dataclasses
import difflib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

from launcher.errors import CheckpointError, ConfigError
from launcher.runtime.checkpoint import rng
from launcher.runtime.checkpoint.agreement import Agreement, StopRequests, job_store
from launcher.runtime.checkpoint.layout import SHARED_PART, CheckpointDir, locate, rank_part
from launcher.runtime.checkpoint.snapshot import Snapshot, Snapshots
from launcher.runtime.checkpoint.writer import AsyncWriter
from launcher.runtime.log import get_logger
from launcher.schema import CheckpointSettings
from launcher.validation import check_setting, checkpoint_conflict

FORMAT = 1
SLOW_WRITER = 0.5  # seconds a save may wait for the previous one before the checkpointer says so


def checkpoint_settings(settings: CheckpointSettings, overrides: dict[str, Any]) -> CheckpointSettings:
    """The job's ``checkpoint:`` section with ``ctx.checkpointer()``'s keywords (field names) applied, checked."""
    names = [field.name for field in dataclasses.fields(CheckpointSettings)]
    values = {}
    for name, value in overrides.items():
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            raise ConfigError(f"checkpointer(): {name}=: unknown keyword",
                              f"did you mean {close[0]}=?" if close else f"known: {', '.join(names)}")
        values[name] = check_setting(CheckpointSettings, name, value, "checkpointer(): checkpoint")
    chosen = dataclasses.replace(settings, **values)
    conflict = checkpoint_conflict(chosen)
    if conflict is not None:
        key, problem, fix = conflict
        raise ConfigError(f"checkpointer(): checkpoint.{key}: {problem}", f"{fix} (or pass dir=)")
    return chosen


class StopAfterCheckpoint(SystemExit):
    """Raised by ``maybe_save`` once the checkpoint the launcher asked for is saved: the rank exits 0."""

    def __init__(self, step: int) -> None:
        super().__init__(0)
        self.step = step


@dataclass(frozen=True)
class Restored:
    """What ``restore()`` loaded: the step saved, the user's extras, and the checkpoint's folder."""

    step: int
    extra: dict[str, Any]
    path: str


@dataclass(frozen=True)
class SaveTiming:
    """How long one save held the training thread: waiting for the previous one, in ``save()`` in all, and
    at the next optimizer step, which waits until the parameters and the optimizer's state are copied."""

    step: int
    waited: float
    blocked: float
    held_at_step: float = 0.0


def _never(_tensor: torch.Tensor) -> bool:
    return False


def _changed_by_steps_only(optimizer: Any) -> Callable[[torch.Tensor], bool]:
    """Whether a tensor is one of ``optimizer``'s parameters or state tensors, which its steps change."""
    if optimizer is None:
        return _never
    pointers = {p.data_ptr() for group in getattr(optimizer, "param_groups", ()) for p in group["params"]}
    pointers |= {value.data_ptr() for state in getattr(optimizer, "state", {}).values() for value in state.values()
                 if isinstance(value, torch.Tensor)}
    return lambda tensor: tensor.data_ptr() in pointers


def unwrap(model: nn.Module) -> nn.Module:
    """The module whose state is saved: without DDP's or DataParallel's ``.module``, torch.compile's wrapper."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel | nn.DataParallel):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):
            model = model._orig_mod  # type: ignore[assignment]
        else:
            return model


class Checkpointer:
    """One per job (``ctx.checkpointer()``); every rank makes it at the same point."""

    def __init__(self, settings: CheckpointSettings, *, rank: int, world_size: int,
                 state: Callable[[], dict[str, Any]], load_state: Callable[[dict[str, Any]], None],
                 launcher_requests: bool = False) -> None:
        """``launcher_requests``: listen for the launcher's save-and-stop request (under the launcher)."""
        self.settings = settings
        self.rank = rank
        self.world_size = world_size
        self._state, self._load_state = state, load_state
        self._dir = CheckpointDir(settings.dir) if settings.dir else None
        self._writer = AsyncWriter(asynchronous=settings.async_)
        self._snapshots = Snapshots()
        self._agreement = Agreement(rank, world_size)
        self._listening = launcher_requests and self._dir is not None
        self._requests: StopRequests | None = None
        if self._listening and rank == 0:
            self._requests = StopRequests(self._agreement.job_store or job_store())
        self._saves = 0  # saves started by this checkpointer: the same count on every rank
        self._copying: Snapshot | None = None  # the last save, whose parameters may still be being copied
        self._step_hook = register_optimizer_step_pre_hook(self._before_optimizer_step) if settings.async_ else None
        self._last_save = time.monotonic()
        self.last_timing: SaveTiming | None = None  # how long the latest save held the training thread

    # -- saving ------------------------------------------------------------------------------------------

    def maybe_save(self, step: int, *, model: nn.Module | None = None, optimizer: Any = None, scheduler: Any = None,
                   scaler: Any = None, extra: dict[str, Any] | None = None) -> bool:
        """Save if one is due at ``step`` (``every_steps``, ``every_seconds``, the launcher's save-and-stop request);
        whether it saved. After a save the launcher asked for, raises ``StopAfterCheckpoint``."""
        self._writer.check()
        if self._dir is None:
            return False
        due = self.settings.every_steps is not None and step % self.settings.every_steps == 0
        every = self.settings.every_seconds
        timed = every is not None and time.monotonic() - self._last_save >= every
        stop = self._requests is not None and self._requests.asked()
        if every is not None or self._listening:  # only rank 0's clock and view count
            timed, stop = (bool(flag) for flag in self._agreement.from_rank0([int(timed), int(stop)]))
        if due or timed or stop:
            self.save(step, model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler, extra=extra)
        if stop:
            self._stop_after(step)
        return due or timed or stop

    def _stop_after(self, step: int) -> None:
        self.close()  # this rank's part written; rank 0: every rank's, and the checkpoint marked complete
        if self._requests is not None:
            self._requests.stopped(step)
        get_logger().info("checkpoint: saved step %d and stopping, as the launcher asked", step)
        raise StopAfterCheckpoint(step)

    def save(self, step: int, *, model: nn.Module | None = None, optimizer: Any = None, scheduler: Any = None,
             scaler: Any = None, extra: dict[str, Any] | None = None) -> None:
        """Save now: snapshot here, write in the background (the previous save is waited for first)."""
        if self._dir is None:
            raise ConfigError("checkpointer(): checkpoint.dir is not set: there is nowhere to save",
                              "set checkpoint.dir in the job file, or pass ctx.checkpointer(dir=...)")
        started = time.perf_counter()
        self._writer.wait()  # the previous save is written: its buffers can be reused
        waited = time.perf_counter() - started
        own = {"format": FORMAT, "step": step, "rank": self.rank, "world_size": self.world_size,
               "rng": rng.capture(), "context": self._state()}
        parts = {rank_part(self.rank): own}
        if self.rank == 0:
            parts[SHARED_PART] = {
                "format": FORMAT, "step": step, "world_size": self.world_size,
                "model": unwrap(model).state_dict() if model is not None else None,
                "optimizer": optimizer.state_dict() if optimizer is not None else None,
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "scaler": scaler.state_dict() if scaler is not None else None,
                "extra": extra or {},
            }
        later = _changed_by_steps_only(optimizer) if self.settings.async_ else _never
        snapshot = self._snapshots.take(parts, later)
        self._saves += 1
        number = self._saves
        self._copying = snapshot
        self._writer.submit(lambda: self._write(step, number, snapshot))
        self._last_save = time.monotonic()
        self.last_timing = SaveTiming(step, waited, time.perf_counter() - started)
        if waited > SLOW_WRITER and self.rank == 0:
            get_logger().warning("checkpoint: the save of step %d waited %.1f s for the previous one to be written "
                                 "(save less often, or to a faster disk)", step, waited)

    def _before_optimizer_step(self, _optimizer: Any, _args: Any, _kwargs: Any) -> None:
        """Before any optimizer step changes them: the last save's copies are made (what the writer has not
        taken on yet, by this thread)."""
        snapshot = self._copying
        if snapshot is None or snapshot.copied.is_set():
            return
        started = time.perf_counter()
        snapshot.copy_rest()
        if self.last_timing is not None:
            self.last_timing = dataclasses.replace(self.last_timing, held_at_step=time.perf_counter() - started)

    def _write(self, step: int, number: int, snapshot: Snapshot) -> None:
        """The writer's job: the copies left for later, this rank's parts, then (rank 0) the mark of completion
        once every rank's are in."""
        assert self._dir is not None
        snapshot.finish()
        self._dir.begin(step)
        for name, part in sorted(snapshot.parts.items()):
            self._dir.write_part(step, name, part)
        self._agreement.part_written(number)
        if self.rank != 0:
            return
        self._agreement.wait_until_all_written(number)
        self._dir.mark_complete(step, self.world_size, [SHARED_PART, *(rank_part(r) for r in range(self.world_size))])
        self._dir.prune(self.settings.keep, step)

    def wait(self) -> None:
        """Until this rank's save in flight is written (rank 0: and marked complete); its error raised here."""
        self._writer.wait()

    def close(self) -> None:
        """Wait for the save in flight and stop the writer (``ctx.close()`` does it); a writer error is raised."""
        if self._step_hook is not None:
            self._step_hook.remove()
            self._step_hook = None
        self._writer.close()

    # -- restoring ---------------------------------------------------------------------------------------

    def restore(self, *, model: nn.Module | None = None, optimizer: Any = None, scheduler: Any = None,
                scaler: Any = None) -> Restored | None:
        """Load the checkpoint ``checkpoint.resume`` names into these objects; None when there is none."""
        self._writer.wait()  # nothing is being copied out of the objects loaded into
        found = self._resume_from()
        if found is None:
            return None
        folder, step = found
        manifest = folder.manifest(step)
        shared = self._part(folder, step, SHARED_PART)
        for name, target in (("model", unwrap(model) if model is not None else None), ("optimizer", optimizer),
                             ("scheduler", scheduler), ("scaler", scaler)):
            if target is not None:
                self._load_into(target, name, shared, folder.part_path(step, SHARED_PART))
        same_world = manifest.world_size == self.world_size
        own = self._part(folder, step, rank_part(self.rank if same_world else 0))
        self._load_state(own["context"])
        log = get_logger()
        if not same_world and self.rank == 0:
            log.warning("checkpoint: %s was saved by %d rank(s), this job has %d: the model, optimizer, scheduler, "
                        "scaler, extras and loader positions are loaded; each rank's RNG states are not (every "
                        "rank goes on from its seed)", folder.folder(step), manifest.world_size, self.world_size)
        missed = rng.restore(own["rng"]) if same_world else []  # last: nothing may draw after it
        if missed and self.rank == 0:
            log.warning("checkpoint: RNG states not restored: %s", ", ".join(missed))
        if self.rank == 0:
            log.info("checkpoint: resumed from %s (step %d)", folder.folder(step), step)
        return Restored(step, dict(shared.get("extra") or {}), folder.folder(step))

    def _resume_from(self) -> tuple[CheckpointDir, int] | None:
        """The checkpoint to resume from, as rank 0 finds it (every rank gets rank 0's answer)."""
        resume = self.settings.resume
        if resume == "never" or (resume == "auto" and self._dir is None):
            return None
        folder, step = (self._dir, None) if resume == "auto" else locate(resume)
        assert folder is not None
        if step is None:
            latest = folder.latest_step() if self.rank == 0 else None
            (agreed,) = self._agreement.from_rank0([-1 if latest is None else latest])
            step = None if agreed < 0 else agreed
        if step is None:
            if resume == "auto":
                return None
            raise CheckpointError(f"checkpoint.resume: {folder.root}: holds no complete checkpoint",
                                  "name a checkpoint dir with a complete step-* folder, or set resume: auto")
        return folder, step

    def _part(self, folder: CheckpointDir, step: int, part: str) -> dict[str, Any]:
        data = folder.load_part(step, part)
        path = folder.part_path(step, part)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise CheckpointError(f"{path}: not a launcher checkpoint part of format {FORMAT} (found {found!r})",
                                  "resume from a checkpoint this launcher saved")
        return data

    def _load_into(self, target: Any, name: str, shared: dict[str, Any], path: str) -> None:
        state = shared.get(name)
        if name == "scaler" and state == {}:  # saved without loss scaling (a no-op or disabled scaler)
            if self.rank == 0:
                get_logger().info("checkpoint: the saved grad scaler had no state (no loss scaling then): "
                                  "this job's scaler starts from its initial scale")
            return
        if state is None:
            raise CheckpointError(f"{path}: holds no {name} state (none was passed to save())",
                                  f"restore without {name}=, or save it with the checkpoint")
        try:
            target.load_state_dict(state)
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as error:
            detail = " ".join(str(error).split())
            detail = detail if len(detail) <= 300 else detail[:297] + "..."
            raise CheckpointError(f"{path}: the {name} state does not fit this job's {name}: {detail}",
                                  "resume with the same model and optimizer settings, or set resume: never") from None
