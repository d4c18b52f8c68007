"""What each operating system can do, in one place: start methods, backends, signals.

Every decision that differs between Linux, macOS and Windows is a function here
taking the platform name as an argument, so tests can fake the platform.
Never imports torch.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass

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


@dataclass(frozen=True)
class StartMethodChoice:
    method: str  # "forkserver", "spawn" or "fork"
    preload_torch: bool  # workers come from a server that imported torch
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
    """The start method the workers will use, and why.

    Linux: a forkserver that preloaded torch, unless the job sets a variable
    that only takes effect at interpreter start (then spawn). macOS and
    Windows: spawn. An explicit request is honoured where the OS supports it.
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
        from launcher.errors import PlatformError

        raise PlatformError(
            f"start_method {requested!r} does not exist on Windows",
            "use start_method: spawn or auto",
        )
    return StartMethodChoice(requested, requested == "forkserver", f"start_method: {requested} was asked for")
