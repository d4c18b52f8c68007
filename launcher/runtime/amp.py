"""Mixed precision from the job's ``amp:`` section: ``ctx.autocast()`` and ``ctx.grad_scaler()``.

One training loop for every setting and device::

    scaler = ctx.grad_scaler()
    with ctx.autocast():
        loss = loss_fn(model(inputs), targets)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()

``autocast()`` is ``torch.autocast(device, dtype)`` when ``amp.enabled``, a
null context otherwise. ``grad_scaler()`` is a ``torch.amp.GradScaler`` only
where loss scaling is needed (float16 on CUDA), else a ``NoOpScaler`` with the
same methods. float16 asked for on the CPU runs as bfloat16, with one warning
line on rank 0. Pass the scaler to the checkpointer (``scaler=``) to save and
restore its state. Worker side: never imports the launch side.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch

from launcher.runtime.log import get_logger
from launcher.schema import AmpSettings

FLOAT16_ON_CPU = ("amp.dtype: float16 runs as bfloat16 on the CPU (float16 needs a GPU and a grad scaler); "
                  "set amp.dtype: bfloat16 to silence this")


class NoOpScaler:
    """``torch.amp.GradScaler``'s methods, doing nothing: the loop without loss scaling (bfloat16, float32)."""

    def scale(self, outputs: Any) -> Any:
        return outputs

    def unscale_(self, optimizer: Any) -> None:
        pass

    def step(self, optimizer: Any, *args: Any, **kwargs: Any) -> Any:
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale: float | torch.Tensor | None = None) -> None:
        pass

    def get_scale(self) -> float:
        return 1.0

    def is_enabled(self) -> bool:
        return False

    def state_dict(self) -> dict[str, Any]:
        return {}  # what a disabled GradScaler saves

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass  # any scaler's state: a job saved with loss scaling may resume without it


Scaler = torch.amp.GradScaler | NoOpScaler


class Amp:
    """The job's mixed-precision settings applied to one device; made once per context."""

    def __init__(self, settings: AmpSettings, device: torch.device, *, rank: int = 0,
                 warn: Callable[[str], None] | None = None) -> None:
        self.device_type = device.type
        self.dtype: torch.dtype | None = None  # None: autocast is off
        if settings.enabled:
            self.dtype = torch.float16 if settings.dtype == "float16" else torch.bfloat16
            if self.dtype == torch.float16 and self.device_type == "cpu":
                self.dtype = torch.bfloat16
                if rank == 0:
                    (warn or get_logger().warning)(FLOAT16_ON_CPU)
        self._scaler: Scaler | None = None

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """``torch.autocast`` for this device and dtype, or a null context when AMP is off."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def grad_scaler(self) -> Scaler:
        """The job's scaler (the same object every call): a GradScaler for float16 on CUDA, else a no-op."""
        if self._scaler is None:
            needs_scaling = self.dtype == torch.float16 and self.device_type == "cuda"
            self._scaler = torch.amp.GradScaler("cuda") if needs_scaling else NoOpScaler()
        return self._scaler
