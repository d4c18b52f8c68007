"""Facts about this host that the launcher and the workers both need.

``host_facts(environ)`` gathers, once per launch, everything the plan and the
preflight need to know about the machine (``HostFacts``); ``visible_devices``
is the one reader of ``CUDA_VISIBLE_DEVICES``. Pure standard library: no
torch, no user code. Each function reads the machine once per call; callers
keep the result.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from launcher.network import Resolution, Route, resolve, route_to
from launcher.platforms import current_platform
from launcher.rlimits import HostLimits, host_limits

NVIDIA_PROC_GPUS = Path("/proc/driver/nvidia/gpus")  # one entry per installed GPU (Linux driver)


@dataclass(frozen=True)
class HostFacts:
    """What the plan and the preflight need to know about this machine, gathered once by ``host_facts``."""

    usable_cpus: int
    installed_gpus: int  # NVIDIA GPUs the driver lists (0: none, or no driver)
    platform: str
    environ: Mapping[str, str]
    hostname: str
    run_id: str  # a fresh id, used when the job does not name one
    cwd: str
    limits: HostLimits = field(default_factory=HostLimits)  # open files, processes: unknown unless read
    rendezvous: Resolution | None = None  # the rendezvous host's addresses (several nodes); None: not asked
    route: Route | None = None  # how this host reaches the rendezvous host (several nodes); None: not asked, or none


def host_facts(environ: Mapping[str, str], rendezvous_host: str | None = None,
               local_addr: str | None = None) -> HostFacts:
    """This machine's facts, read now; with ``rendezvous_host``, its addresses and how this machine reaches it."""
    rendezvous = resolve(rendezvous_host) if rendezvous_host else None
    return HostFacts(
        usable_cpus=usable_cpus(),
        installed_gpus=installed_gpu_count(),
        platform=current_platform(),
        environ=dict(environ),
        hostname=hostname(),
        run_id=uuid.uuid4().hex[:12],
        cwd=os.getcwd(),
        limits=host_limits(),
        rendezvous=rendezvous,
        route=route_to(rendezvous, local_addr) if rendezvous else None,
    )


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


def installed_gpu_count(proc_root: Path = NVIDIA_PROC_GPUS) -> int:
    """NVIDIA GPUs the driver lists, found without importing torch (Linux; elsewhere 0).

    NCCL, the only backend that needs the count, runs on Linux only.
    """
    try:
        return len(list(proc_root.iterdir()))
    except OSError:
        return 0


@dataclass(frozen=True)
class GpuVisibility:
    """The GPUs CUDA will give a process, read as CUDA reads ``CUDA_VISIBLE_DEVICES``."""

    setting: str | None  # the variable as the workers will see it; None: not set
    devices: tuple[str, ...]  # the entries CUDA uses, in order (indices, UUIDs, MIG names)
    ignored: str | None = None  # the entry CUDA stopped at (an index that does not exist), and all after it

    @property
    def count(self) -> int:
        return len(self.devices)

    @property
    def duplicated(self) -> bool:
        return len(set(self.devices)) != len(self.devices)


def visible_devices(setting: str | None, installed: int) -> GpuVisibility:
    """What CUDA makes of ``CUDA_VISIBLE_DEVICES=setting`` on a host with ``installed`` GPUs.

    Unset: every installed GPU. Set: its entries in order, up to the first index
    that does not exist (negative, or not below ``installed``), which CUDA
    ignores with everything after it; an empty value or ``-1`` hides every GPU.
    UUIDs and MIG names count as given. Without an installed GPU (no driver),
    nothing is visible, whatever the variable says.
    """
    if installed <= 0:
        return GpuVisibility(setting, ())
    if setting is None:
        return GpuVisibility(None, tuple(str(i) for i in range(installed)))
    devices: list[str] = []
    for entry in (e.strip() for e in setting.split(",")):
        if not entry:
            continue
        index = int(entry) if entry.lstrip("-").isdigit() else None
        if index is not None and not 0 <= index < installed:
            return GpuVisibility(setting, tuple(devices), ignored=entry)
        devices.append(entry)
    return GpuVisibility(setting, tuple(devices))


def hostname() -> str:
    import socket

    return socket.gethostname()
