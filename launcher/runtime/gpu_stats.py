"""One CUDA device's memory and utilisation through NVML (nvidia-ml-py), for the monitor thread.

NVML reads the driver's counters without a CUDA context, so it is safe from a
background thread, where ``torch.cuda`` never is. NVML numbers devices as the
machine does: the rank's device is found through ``CUDA_VISIBLE_DEVICES``
(indexes or UUIDs) as CUDA would. Figures are device-wide (every process on it).
Without NVML (no driver, no ``nvidia-ml-py``) there is no probe, and one warning says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from launcher.runtime.log import get_logger


class GpuProbe:
    """Reads one device; made by ``open_gpu_probe``."""

    def __init__(self, nvml: Any, handle: Any, index: int) -> None:
        self._nvml = nvml
        self._handle = handle
        self._index = index

    def sample(self) -> dict[str, Any] | None:
        try:
            memory = self._nvml.nvmlDeviceGetMemoryInfo(self._handle)
            rates = self._nvml.nvmlDeviceGetUtilizationRates(self._handle)
        except Exception:  # a driver error mid-run: this record has no GPU figures
            return None
        return {"index": self._index, "memory_used_bytes": int(memory.used),
                "memory_total_bytes": int(memory.total), "utilization": int(rates.gpu)}


def visible_device(local_index: int, environ: Mapping[str, str]) -> str:
    """The machine's name for CUDA's device ``local_index``: an index or a UUID from ``CUDA_VISIBLE_DEVICES``."""
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return str(local_index)
    entries = [entry.strip() for entry in visible.split(",") if entry.strip()]
    if local_index >= len(entries):
        raise LookupError(f"CUDA_VISIBLE_DEVICES={visible} has no device {local_index}")
    return entries[local_index]


def open_gpu_probe(local_index: int, environ: Mapping[str, str]) -> GpuProbe | None:
    """A probe of the rank's device, or None (with one warning) when NVML cannot read it."""
    try:
        import pynvml

        pynvml.nvmlInit()
        name = visible_device(local_index, environ)
        if name.isdigit():
            handle = pynvml.nvmlDeviceGetHandleByIndex(int(name))
        else:
            handle = pynvml.nvmlDeviceGetHandleByUUID(name)
        return GpuProbe(pynvml, handle, local_index)
    except Exception as error:
        get_logger().warning("monitor: no GPU figures (NVML: %s); install nvidia-ml-py and check the driver",
                             str(error) or type(error).__name__)
        return None
