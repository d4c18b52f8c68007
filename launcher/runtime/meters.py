"""What the training loop reports, counted for the monitor thread: steps, samples, data waits, epochs, values.

The training thread (``ctx.step``, ``ctx.log``, the context's loaders) updates
one ``Meters`` under its lock; the monitor thread takes a ``Reading`` under the
same lock. Nothing here touches CUDA from the monitor thread: a CUDA tensor
given to ``ctx.log`` is kept, and read by the training thread in a later call,
at most once per ``read_every`` seconds. No torch import: tensors are
recognised by what they have (``item``, ``device``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Reading:
    """The counters at one moment (``step`` and ``samples``: the loop's own counts when it gave any, else the
    context loaders')."""

    step: int
    samples: int
    data_wait_seconds: float
    epoch: int | None
    total_steps: int | None
    values: dict[str, float] = field(default_factory=dict)


class Meters:
    """Counters shared by the training thread (writers) and the monitor thread (``read``)."""

    def __init__(self, read_every: float = 1.0) -> None:
        self._lock = threading.Lock()
        self.read_every = read_every  # seconds between reads of CUDA values given to log()
        self._steps = 0
        self._step_samples = 0
        self._loop_counts_samples = False
        self._batches = 0
        self._batch_samples = 0
        self._data_wait = 0.0
        self._epoch: int | None = None
        self._total_steps: int | None = None
        self._total_is_explicit = False
        self._values: dict[str, float] = {}
        self._pending: dict[str, Any] = {}  # CUDA tensors, read by the training thread later
        self._last_pending_read = time.monotonic()

    def step(self, steps: int, samples: int | None) -> None:
        """``ctx.step``: steps done, and the samples they took when the loop knows them."""
        self._read_pending()
        with self._lock:
            self._steps += steps
            if samples is not None:
                self._step_samples += samples
                self._loop_counts_samples = True

    def batch(self, samples: int, waited: float) -> None:
        """A context loader yielded a batch of ``samples`` after waiting ``waited`` seconds for it."""
        with self._lock:
            self._batches += 1
            self._batch_samples += samples
            self._data_wait += waited

    def log(self, values: dict[str, Any]) -> None:
        """``ctx.log``: numbers are kept as floats; a CUDA tensor is kept until a later call reads it."""
        numbers: dict[str, float] = {}
        pending: dict[str, Any] = {}
        for name, value in values.items():
            if _on_accelerator(value):
                pending[name] = value.detach()
            else:
                numbers[name] = _number(name, value)
        with self._lock:
            self._values.update(numbers)
            for name in numbers:
                self._pending.pop(name, None)
            self._pending.update(pending)
        self._read_pending()

    def set_epoch(self, epoch: int, total_steps: int | None = None) -> None:
        """The loop entered ``epoch``; ``total_steps``: what ``ctx.epochs`` expects, unless the loop set its own."""
        with self._lock:
            self._epoch = epoch
            if total_steps is not None and not self._total_is_explicit:
                self._total_steps = total_steps

    def set_total_steps(self, total: int) -> None:
        with self._lock:
            self._total_steps = total
            self._total_is_explicit = True

    def read(self) -> Reading:
        with self._lock:
            counted = self._steps > 0
            return Reading(
                step=self._steps if counted else self._batches,
                samples=self._step_samples if self._loop_counts_samples else self._batch_samples,
                data_wait_seconds=self._data_wait,
                epoch=self._epoch,
                total_steps=self._total_steps,
                values=dict(self._values),
            )

    def _read_pending(self) -> None:
        """In the training thread: read the kept CUDA values once ``read_every`` seconds passed (one sync)."""
        if not self._pending or time.monotonic() - self._last_pending_read < self.read_every:
            return
        with self._lock:
            pending, self._pending = self._pending, {}
        numbers = {name: _number(name, value) for name, value in pending.items()}
        with self._lock:
            for name, number in numbers.items():
                if name not in self._pending:  # a newer value came meanwhile: it waits for the next read
                    self._values[name] = number
        self._last_pending_read = time.monotonic()


def _on_accelerator(value: Any) -> bool:
    device = getattr(value, "device", None)
    return device is not None and hasattr(value, "detach") and getattr(device, "type", "cpu") != "cpu"


def _number(name: str, value: Any) -> float:
    """A float from a number, a one-element tensor or array; a clear error for anything else."""
    try:
        number = float(value.item() if hasattr(value, "item") else value)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"ctx.log({name}=...): expected a number or a one-element tensor, "
                        f"got {type(value).__name__}") from None
    return number


def batch_length(batch: Any, default: int) -> int:
    """The number of samples in a batch: the first dimension of its first tensor (in a tuple, list or dict)."""
    item = batch
    for _ in range(3):
        shape = getattr(item, "shape", None)
        if shape is not None and len(shape) > 0:
            return int(shape[0])
        if isinstance(item, (list, tuple)) and item:
            item = item[0]
        elif isinstance(item, dict) and item:
            item = next(iter(item.values()))
        else:
            break
    return default


METERS = Meters()  # this process's: the context, its loaders and the monitor share it
