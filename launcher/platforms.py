"""What each operating system can do, in one place: start methods, backends, signals.

Every decision that differs between Linux, macOS and Windows is a function here
taking the platform name (``linux``, ``darwin``, ``win32``) as an argument, so
tests can fake the platform. Signals are named by string, never looked up on the
``signal`` module here, because names such as ``SIGHUP`` do not exist on Windows.

Never imports torch: the torch version comes from the installed distribution's
metadata. Imported by the worker side too, so it stays standard-library only.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass

from launcher.errors import PlatformError

# Variables read when the interpreter or torch starts: a worker forked from a
# torch-preloaded server would not see a value that differs from the server's.
STARTUP_ONLY_VARIABLES = (
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "PYTHONHASHSEED",
    "PYTHONMALLOC",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MALLOC_CONF",
)

# Signals that mean "stop" and that the launcher passes on to its workers.
_POSIX_STOP_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT")
# Windows has no SIGHUP/SIGQUIT/SIGUSR*; Ctrl-C and Ctrl-Break arrive as SIGINT/SIGBREAK,
# and SIGTERM can only be raised inside a process, never delivered from outside.
_WINDOWS_SIGNALS = ("SIGINT", "SIGBREAK", "SIGTERM")
_POSIX_SIGNALS = (*_POSIX_STOP_SIGNALS, "SIGUSR1", "SIGUSR2", "SIGKILL", "SIGABRT", "SIGSEGV", "SIGALRM")

# torch made libuv the default TCPStore backend in 2.4; the Windows wheels are built
# without it (pytorch/pytorch#139990), and torch.distributed.elastic still asks for it.
_LIBUV_DEFAULT_SINCE = (2, 4)


@dataclass(frozen=True)
class StartMethodChoice:
    method: str  # "forkserver", "spawn" or "fork"
    preload_torch: bool  # workers come from a server that imported torch
    reason: str


@dataclass(frozen=True)
class BackendChoice:
    backend: str  # "nccl" or "gloo"
    reason: str


def current_platform() -> str:
    """``linux``, ``darwin`` or ``win32`` (``sys.platform`` folded)."""
    if sys.platform.startswith("linux"):
        return "linux"
    return sys.platform


def choose_start_method(
    requested: str,
    platform: str,
    job_env: Mapping[str, str],
    launcher_env: Mapping[str, str],
) -> StartMethodChoice:
    """The start method the launcher's workers will use, and why.

    One table per OS (``auto`` is the default; the user's own processes inside a
    worker keep their own default, see ``default_mp_start_method``):

    Linux
        ==========  =====================================================================
        auto        forkserver that preloaded torch; spawn if the job env changes a
                    variable read only at interpreter start (``STARTUP_ONLY_VARIABLES``)
        forkserver  forkserver that preloaded torch
        spawn       spawn
        fork        fork (the launcher parent never imports torch, so never after CUDA)
        ==========  =====================================================================

    macOS
        ==========  =====================================================================
        auto        spawn (fork is unsafe with the system frameworks; Python's default)
        forkserver  forkserver that preloaded torch
        spawn       spawn
        fork        fork, as asked, with the reason saying it is unsafe on macOS
        ==========  =====================================================================

    Windows
        ==========  =====================================================================
        auto        spawn (the only start method Windows has)
        spawn       spawn
        forkserver  PlatformError: does not exist on Windows
        fork        PlatformError: does not exist on Windows
        ==========  =====================================================================
    """
    if requested == "auto":
        if platform != "linux":
            return StartMethodChoice("spawn", False, f"spawn is the safe default on {platform}")
        for name in STARTUP_ONLY_VARIABLES:
            if name in job_env and job_env[name] != launcher_env.get(name):
                return StartMethodChoice(
                    "spawn",
                    False,
                    f"job env sets {name}, read only at interpreter start: workers are spawned",
                )
        return StartMethodChoice("forkserver", True, "workers fork from a server that preloaded torch")
    if requested in ("fork", "forkserver") and platform == "win32":
        raise PlatformError(
            f"start_method {requested!r} does not exist on Windows",
            "use start_method: spawn or auto",
        )
    if requested == "fork" and platform == "darwin":
        return StartMethodChoice(
            "fork", False, "start_method: fork was asked for (unsafe on macOS: system frameworks may crash)"
        )
    return StartMethodChoice(requested, requested == "forkserver", f"start_method: {requested} was asked for")


def default_mp_start_method(platform: str, python_version: tuple[int, int] = sys.version_info[:2]) -> str:
    """The start method ``multiprocessing`` uses by default for the user's own processes.

    Linux: fork up to Python 3.13, forkserver from 3.14. macOS (3.8+) and Windows: spawn.
    ``torch.multiprocessing.spawn`` ignores this and always spawns.
    """
    if platform == "linux":
        return "forkserver" if python_version >= (3, 14) else "fork"
    return "spawn"


def start_method_pickles(method: str) -> bool:
    """Whether a process started this way receives its target and arguments by pickle."""
    return method in ("spawn", "forkserver")


def supports_process_groups(platform: str) -> bool:
    """Whether workers can be put in their own process group and killed as a group (POSIX only)."""
    return platform != "win32"


def death_signal_available(platform: str) -> bool:
    """Whether a child can ask to be signalled when its parent dies (``prctl(PR_SET_PDEATHSIG)``: Linux)."""
    return platform == "linux"


PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
PR_SET_CHILD_SUBREAPER = 36


def prctl(option: int, value: int | bytes) -> bool:
    """Linux ``prctl(option, value)``; False where it does not exist or failed."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        return int(ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
        return False


def signal_when_parent_dies(number: int) -> bool:
    """Linux: this process gets signal ``number`` when its parent exits; False elsewhere."""
    return prctl(PR_SET_PDEATHSIG, number)


def become_subreaper(on: bool = True) -> bool:
    """Linux: orphaned descendants of this process are re-parented to it (``on``), or no longer; False elsewhere."""
    return prctl(PR_SET_CHILD_SUBREAPER, int(on))


def name_this_process(name: str) -> bool:
    """Linux: the name ``ps``, ``top`` and psutil show (up to 15 bytes), instead of ``python``."""
    return prctl(PR_SET_NAME, name.encode()[:15])


def available_signals(platform: str) -> tuple[str, ...]:
    """Signal names that exist on this platform (the ones the launcher may mention)."""
    return _WINDOWS_SIGNALS if platform == "win32" else _POSIX_SIGNALS


def parse_signals(spec: str, platform: str) -> tuple[str, ...]:
    """``"SIGTERM,SIGINT"`` → names, checked against the platform.

    Names that exist elsewhere but not here (``SIGHUP`` on Windows) are dropped, as
    torch elastic does; a name that exists nowhere is a ``PlatformError``.
    """
    known = set(_POSIX_SIGNALS) | set(_WINDOWS_SIGNALS)
    here = set(available_signals(platform))
    names: list[str] = []
    for raw in spec.split(","):
        name = raw.strip().upper()
        if not name:
            continue
        if not name.startswith("SIG"):
            name = "SIG" + name
        if name not in known:
            raise PlatformError(f"unknown signal {raw.strip()!r}", "use names such as SIGTERM,SIGINT")
        if name in here and name not in names:
            names.append(name)
    return tuple(names)


def backend_for(requested: str, platform: str, gpus: int, nprocs: int) -> BackendChoice:
    """The process-group backend: nccl only on Linux with a GPU for every local process.

    An explicit ``nccl`` where NCCL does not exist (Windows, macOS) is a
    ``PlatformError``; an explicit ``nccl`` with too few GPUs is left to preflight
    (``check_gpus``), which explains it with the numbers.
    """
    if requested == "gloo":
        return BackendChoice("gloo", "backend: gloo was asked for")
    if requested == "nccl":
        if platform != "linux":
            name = {"win32": "Windows", "darwin": "macOS"}.get(platform, platform)
            raise PlatformError(f"NCCL does not exist on {name}", "use backend: gloo (or auto)")
        return BackendChoice("nccl", "backend: nccl was asked for")
    if requested != "auto":
        raise PlatformError(f"unknown backend {requested!r}", "use backend: auto, nccl or gloo")
    if platform != "linux":
        return BackendChoice("gloo", f"NCCL does not exist on {platform}: gloo")
    if gpus == 0:
        return BackendChoice("gloo", "no CUDA GPU visible: gloo")
    if nprocs > gpus:
        return BackendChoice("gloo", f"{nprocs} processes share {gpus} GPU(s): NCCL needs one GPU each, gloo")
    return BackendChoice("nccl", f"{gpus} GPU(s) visible for {nprocs} process(es): nccl")


def parse_version(text: str) -> tuple[int, int]:
    """``"2.13.0+cpu"`` → ``(2, 13)``; unparsable parts count as 0."""
    parts = text.split("+")[0].split(".")
    numbers: list[int] = []
    for part in parts[:2]:
        digits = "".join(ch for ch in part if ch.isdigit()) if part[:1].isdigit() else ""
        numbers.append(int(digits) if digits else 0)
    while len(numbers) < 2:
        numbers.append(0)
    return numbers[0], numbers[1]


def installed_torch_version() -> str | None:
    """The installed torch's version, read from ``torch/version.py`` without importing torch (None: no torch).

    Reading the file takes about a millisecond; ``importlib.metadata`` would take tens.
    """
    import importlib.util
    import os
    import re

    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        try:
            with open(os.path.join(folder, "version.py"), encoding="utf-8") as handle:
                found = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", handle.read(), re.M)
        except OSError:
            continue
        if found:
            return found.group(1)
    return None


def libuv_env(platform: str, torch_version: str | None, job_env: Mapping[str, str]) -> dict[str, str]:
    """``{"USE_LIBUV": "0"}`` where the TCPStore would ask for libuv the build lacks, else ``{}``.

    That is Windows with torch >= 2.4 (pytorch/pytorch#139990). A value the user set wins.
    """
    if "USE_LIBUV" in job_env or platform != "win32" or torch_version is None:
        return {}
    if parse_version(torch_version) >= _LIBUV_DEFAULT_SINCE:
        return {"USE_LIBUV": "0"}
    return {}


def platform_notes(platform: str) -> tuple[str, ...]:
    """One-line notes on what this platform will not do, for ``--dry-run`` and ``check``."""
    notes: list[str] = []
    if not supports_process_groups(platform):
        notes.append("workers are stopped one by one (no process groups on Windows)")
    if not death_signal_available(platform):
        notes.append("no parent-death signal: workers are stopped by the launcher, not by the kernel")
    return tuple(notes)
