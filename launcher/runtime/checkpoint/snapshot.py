"""A copy of the training state that training may go on changing: tensors on the CPU, plain containers only.

``Snapshots.take(state)`` runs in the training thread; it is the only part of
an async save that holds training up. It walks dicts, lists and tuples and
copies every tensor to CPU memory: into the buffer that held the same tensor
in the previous save when shape and dtype match (no new allocation, no page
faults: the writer is done with that buffer before the next save starts),
pinned when the tensor is on a GPU, copied without blocking and waited for
once at the end. Anything that ``torch.load(weights_only=True)`` would refuse
is refused here, at save time, with where it is (``extra['ema'][0]``): a
checkpoint that cannot be loaded must never be written.

Worker side: never imports the launch side.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch

from launcher.errors import ConfigError

_SCALARS = (str, int, float, bool, bytes, type(None))  # exact types: numpy.float64 is a float, but not plain
_TORCH_VALUES = (torch.Size, torch.dtype, torch.device)  # immutable values weights_only accepts
Path = tuple[Any, ...]


class Snapshots:
    """Takes snapshots, reusing the CPU buffers of the previous one."""

    def __init__(self) -> None:
        self._buffers: dict[Path, torch.Tensor] = {}
        self._used: dict[Path, torch.Tensor] = {}
        self._on_gpu = False

    def take(self, parts: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """A copy of the parts of a save on the CPU; ``ConfigError`` naming any value a part cannot hold."""
        self._used, self._on_gpu = {}, False
        copied = self._copy(parts, ())
        if self._on_gpu:  # the copies were queued without blocking: they must be done before the writer reads them
            torch.cuda.synchronize()
        self._buffers = self._used  # buffers of tensors that are gone are released
        return copied  # type: ignore[no-any-return]

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
        buffer = self._buffers.get(path)
        if buffer is None or buffer.shape != tensor.shape or buffer.dtype != tensor.dtype:
            buffer = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=tensor.is_cuda)
        on_gpu = tensor.device.type == "cuda"
        buffer.copy_(tensor, non_blocking=on_gpu)
        self._on_gpu |= on_gpu
        self._used[path] = buffer
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
