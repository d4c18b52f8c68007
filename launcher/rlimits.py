"""The host limits a launch depends on: open files per process, and how many processes may run.

Read once for the plan (``host_limits``), which refuses a job that cannot fit
them. The launcher's own processes that hold fds per rank, the forkserver and
the agent, raise their soft open-files limit to the hard one
(``raise_open_files``, ``open_files_raised``); every worker gets the user's
soft limit back (``restore_open_files``), as under torchrun: a program that
still uses ``select()`` breaks on fds above 1024.

Standard library only; imported by both sides. Where a limit cannot be read
(Windows has no ``resource`` module) it is None, and nothing is changed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]


@dataclass(frozen=True)
class HostLimits:
    """Limits of this process and host; None where unknown or unlimited."""

    open_files_soft: int | None = None  # RLIMIT_NOFILE
    open_files_hard: int | None = None
    user_processes: int | None = None  # RLIMIT_NPROC (soft), for a user other than root
    pid_max: int | None = None  # kernel.pid_max: tasks (threads included) on the whole host
    threads_max: int | None = None  # kernel.threads-max
    tasks_running: int | None = None  # tasks on the host now (/proc/loadavg)
    cgroup_pids_max: int | None = None  # pids.max of this cgroup (a container's limit)
    cgroup_pids_current: int | None = None


def host_limits(proc: Path = Path("/proc"), cgroup: Path = Path("/sys/fs/cgroup")) -> HostLimits:
    """This process's and host's limits, read now."""
    soft = hard = user_processes = None
    if resource is not None:
        soft, hard = (_finite(value) for value in resource.getrlimit(resource.RLIMIT_NOFILE))
        if hasattr(resource, "RLIMIT_NPROC") and os.geteuid() != 0:  # root is not held to it
            user_processes = _finite(resource.getrlimit(resource.RLIMIT_NPROC)[0])
    loadavg = _read(proc / "loadavg")
    tasks = loadavg.split()[3].partition("/")[2] if loadavg and len(loadavg.split()) > 3 else None
    pids_dir = cgroup if (cgroup / "pids.max").exists() else cgroup / "pids"  # cgroup v2, or v1's controller
    return HostLimits(
        open_files_soft=soft,
        open_files_hard=hard,
        user_processes=user_processes,
        pid_max=_number(_read(proc / "sys/kernel/pid_max")),
        threads_max=_number(_read(proc / "sys/kernel/threads-max")),
        tasks_running=_number(tasks),
        cgroup_pids_max=_number(_read(pids_dir / "pids.max")),
        cgroup_pids_current=_number(_read(pids_dir / "pids.current")),
    )


def _finite(value: int) -> int | None:
    return None if resource is None or value == resource.RLIM_INFINITY or value < 0 else int(value)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _number(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None  # "max" (cgroup): no limit


def raise_open_files() -> int | None:
    """Raise this process's soft open-files limit to the hard one; the soft limit it had, or None if unchanged."""
    if resource is None:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard or _finite(hard) is None:  # an unlimited hard limit (macOS) cannot be the soft one
        return None
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (OSError, ValueError):
        return None
    return int(soft)


@contextlib.contextmanager
def open_files_raised() -> Iterator[None]:
    """The soft open-files limit at the hard one in the block, then as it was."""
    previous = raise_open_files()
    try:
        yield
    finally:
        if previous is not None:
            restore_open_files(previous)


def restore_open_files(soft: int | None) -> None:
    """Set this process's soft open-files limit back to ``soft`` (the user's), if it was raised."""
    if resource is None or soft is None:
        return
    current, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if current != soft:
        with contextlib.suppress(OSError, ValueError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
