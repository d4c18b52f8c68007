"""``@pytest.mark.distributed(...)``: its arguments read into one frozen value, or one clear error.

Pure: no pytest, no torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

BACKENDS = ("gloo", "nccl", "auto")
USAGE = "@pytest.mark.distributed(nprocs=2, backend='gloo', timeout=30, check=None)"


class MarkError(ValueError):
    """A mark with arguments the plugin cannot run: the message names the argument and what it takes."""


@dataclass(frozen=True)
class Distributed:
    nprocs: int | str = 2  # a count, or "gpu": one rank per visible CUDA device
    backend: str = "gloo"  # "gloo", "nccl", or "auto" (nccl when every rank has a GPU, else gloo)
    timeout: float = 30.0  # seconds from the fork to the last rank's end; then every rank's stacks
    check: Callable[[dict[int, Any]], object] | None = None  # called in pytest with each rank's return value


def read_mark(args: Sequence[Any], kwargs: Mapping[str, Any]) -> Distributed:
    """The mark's arguments (``nprocs`` may be positional) as a ``Distributed``."""
    known = {field.name for field in fields(Distributed)}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise MarkError(f"unknown argument {unknown[0]!r}: {USAGE}")
    if len(args) > 1 or (args and "nprocs" in kwargs):
        raise MarkError(f"only nprocs may be given by position, once: {USAGE}")
    values = dict(kwargs)
    if args:
        values["nprocs"] = args[0]
    spec = Distributed(**values)
    nprocs = spec.nprocs
    if nprocs != "gpu" and (isinstance(nprocs, bool) or not isinstance(nprocs, int) or nprocs < 1):
        raise MarkError(f"nprocs must be a positive integer or 'gpu', got {nprocs!r}")
    if spec.backend not in BACKENDS:
        raise MarkError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {spec.backend!r}")
    if isinstance(spec.timeout, bool) or not isinstance(spec.timeout, (int, float)) or not spec.timeout > 0:
        raise MarkError(f"timeout must be a positive number of seconds, got {spec.timeout!r}")
    if spec.check is not None and not callable(spec.check):
        raise MarkError(f"check must be a function of {{rank: return value}}, got {spec.check!r}")
    return spec
