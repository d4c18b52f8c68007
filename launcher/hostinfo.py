"""Facts about this host that the launcher and the workers both need.

Pure standard library: no torch, no user code. Each function reads the
machine once per call; callers keep the result.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path


def _cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by the cgroup quota (v2 ``cpu.max`` or v1 cfs), or None."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        if quota != "max":
            return int(quota) / int(period)
        return None
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        if quota_us > 0 and period_us > 0:
            return quota_us / period_us
    except (OSError, ValueError):
        pass
    return None


def usable_cpus() -> int:
    """The CPUs this process may run on: affinity, capped by a cgroup quota; at least 1."""
    # sched_getaffinity does not exist on macOS and Windows
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    limit = _cgroup_cpu_limit()
    if limit is not None:
        count = min(count, max(1, math.ceil(limit)))
    return max(1, count)


def visible_gpu_count(environ: Mapping[str, str], proc_root: Path = Path("/proc/driver/nvidia/gpus")) -> int:
    """NVIDIA GPUs this process may use, found without importing torch.

    CUDA_VISIBLE_DEVICES, when set, decides (an empty value or ``-1`` hides all);
    otherwise the driver's ``/proc`` entries are counted (Linux). Elsewhere 0:
    NCCL, the only backend that needs the count, runs on Linux only.
    """
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    try:
        installed = len(list(proc_root.iterdir()))
    except OSError:
        installed = 0
    if visible is None:
        return installed
    devices = [d.strip() for d in visible.split(",") if d.strip()]
    count = 0
    for device in devices:
        if device.startswith("-"):
            break  # CUDA stops at the first invalid index
        count += 1
    return min(count, installed) if installed else 0


def hostname() -> str:
    import socket

    return socket.gethostname()
