"""A copy of the training state that training may go on changing: tensors on the CPU, plain containers only.

``Snapshots.take(parts)`` runs in the training thread. It walks dicts, lists
and tuples, and copies every tensor to CPU memory: into the buffer that held
the same tensor in the previous save when shape and dtype match (no new
allocation, no page faults: the writer is done with that buffer before the
next save starts), pinned when the tensor is on a GPU, copied without blocking
and waited for once at the end. Anything that ``torch.load(weights_only=True)``
would refuse is refused here, at save time, with where it is
(``extra['ema'][0]``): a checkpoint that cannot be loaded must never be written.

Tensors on the CPU that only an optimizer step changes (the parameters and the
optimizer's state, which the caller names with ``later``) are not copied here:
the writer's thread copies them (``Snapshot.finish``) while the next forward and
backward run, and the next optimizer step copies whatever is still left itself
(``Snapshot.copy_rest``) before it may change them (CheckFreq's pipelined
snapshot, FAST '21). Each such tensor's version counter, read at ``take``, is
read again right after its copy: a tensor changed in place in between (not by
an optimizer step) fails the save instead of tearing it. A change through
``.data`` is invisible to that check.

Worker side: never imports the launch side.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from launcher.errors import CheckpointError, ConfigError

_SCALARS = (str, int, float, bool, bytes, type(None))  # exact types: numpy.float64 is a float, but not plain
_TORCH_VALUES = (torch.Size, torch.dtype, torch.device)  # immutable values weights_only accepts
Path = tuple[Any, ...]


@dataclass
class Snapshot:
    """The parts of a save, with the CPU copies still to make: (source, buffer, its version at ``take``, path)."""

    parts: dict[str, dict[str, Any]]
    pending: list[tuple[torch.Tensor, torch.Tensor, int, Path]] = field(default_factory=list)
    copied: threading.Event = field(default_factory=threading.Event, init=False)  # every pending copy is made
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _taken: int = field(default=0, init=False)  # pending copies that a thread took on
    _made: int = field(default=0, init=False)
    _changed: list[Path] = field(default_factory=list, init=False)
    _failed: list[BaseException] = field(default_factory=list, init=False)  # a copy that raised (out of memory)

    def __post_init__(self) -> None:
        if not self.pending:
            self.copied.set()

    def copy_rest(self) -> None:
        """Make the copies no thread took on yet, then wait for those another thread is making."""
        while True:
            with self._lock:
                if self._taken == len(self.pending):
                    break
                source, buffer, version, path = self.pending[self._taken]
                self._taken += 1
            try:
                if buffer.shape != source.shape:  # its memory comes now, not in the training thread's save()
                    buffer.resize_(source.shape)
                buffer.copy_(source)
            except BaseException as error:
                self._failed.append(error)
            finally:  # counted even when it failed: nobody may wait for it for ever
                with self._lock:
                    if source._version != version:
                        self._changed.append(path)
                    self._made += 1
                    if self._made == len(self.pending):
                        self.copied.set()
        self.copied.wait()

    def finish(self) -> None:
        """The writer's thread: every copy made; ``CheckpointError`` if a source changed since ``take``."""
        self.copy_rest()
        if self._failed:
            raise self._failed[0]
        if self._changed:
            raise CheckpointError(
                f"checkpoint: {where(self._changed[0])} was changed in place after save() and before the next "
                "optimizer step, while it was being copied: this save is dropped",
                "change parameters and optimizer state only in optimizer steps, or after the step that follows "
                "a save")


class Snapshots:
    """Takes snapshots, reusing the CPU buffers of the previous one."""

    def __init__(self) -> None:
        self._buffers: dict[Path, torch.Tensor] = {}
        self._used: dict[Path, torch.Tensor] = {}
        self._on_gpu = False
        self._later: Callable[[torch.Tensor], bool] = lambda tensor: False
        self._pending: list[tuple[torch.Tensor, torch.Tensor, int, Path]] = []

    def take(self, parts: dict[str, dict[str, Any]],
             later: Callable[[torch.Tensor], bool] = lambda tensor: False) -> Snapshot:
        """A copy of the parts of a save on the CPU, but for the CPU tensors ``later`` picks (``finish()`` copies
        them); ``ConfigError`` naming any value a part cannot hold."""
        self._used, self._on_gpu = {}, False
        self._later, self._pending = later, []
        copied = self._copy(parts, ())
        if self._on_gpu:  # the copies were queued without blocking: they must be done before the writer reads them
            torch.cuda.synchronize()
        self._buffers = self._used  # buffers of tensors that are gone are released
        return Snapshot(copied, self._pending)

    def _copy(self, value: Any, path: Path) -> Any:
        kind = type(value)
        if isinstance(value, torch.Tensor):
            return self._tensor(value, path)
        if kind in _SCALARS or kind in _TORCH_VALUES:
            return value
        if kind is dict or kind is OrderedDict:
            copied: Any = kind()
            for key, item in value.items():
                if type(key) not in _SCALARS:
                    raise _refused(path, f"a key of type {type(key).__qualname__}")
                copied[key] = self._copy(item, (*path, key))
            metadata = getattr(value, "_metadata", None)  # a module state_dict's versions: load_state_dict reads them
            if metadata is not None:
                copied._metadata = self._copy(metadata, (*path, "_metadata"))
            return copied
        if kind is list or kind is tuple:
            return kind(self._copy(item, (*path, i)) for i, item in enumerate(value))
        raise _refused(path, f"a {kind.__module__}.{kind.__qualname__}")

    def _tensor(self, tensor: torch.Tensor, path: Path) -> torch.Tensor:
        tensor = tensor.detach()
        later = tensor.device.type == "cpu" and self._later(tensor)
        buffer = self._buffers.get(path)
        if buffer is None or buffer.shape != tensor.shape or buffer.dtype != tensor.dtype:
            shape = (0,) if later else tensor.shape  # for later: ``finish`` gives it its memory
            buffer = torch.empty(shape, dtype=tensor.dtype, pin_memory=tensor.is_cuda)
        self._used[path] = buffer
        if later:
            self._pending.append((tensor, buffer, tensor._version, path))
            return buffer
        on_gpu = tensor.device.type == "cuda"
        buffer.copy_(tensor, non_blocking=on_gpu)
        self._on_gpu |= on_gpu
        return buffer


def where(path: Path) -> str:
    """``('shared', 'extra', 'ema', 0)``: ``extra['ema'][0]`` (in the part named first)."""
    inside = path[1:] or path
    return str(inside[0]) + "".join(f"[{key!r}]" for key in inside[1:]) if inside else "the state"


def _refused(path: Path, what: str) -> ConfigError:
    return ConfigError(
        f"checkpoint: {where(path)} is {what}: a checkpoint holds tensors, numbers, strings, None, "
        "and dicts, lists and tuples of them (what torch.load(weights_only=True) loads)",
        "convert it: a numpy array with torch.from_numpy, a numpy number with .item(), an object to its "
        "state_dict()",
    )
