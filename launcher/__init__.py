"""launcher: start and supervise distributed PyTorch training.

``import launcher`` stays light (no torch): ``launch``, ``init`` and the
result types are loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Context", "JobConfig", "JobFailed", "RunResult", "init", "launch"]

if TYPE_CHECKING:
    from launcher.api import launch
    from launcher.result import JobFailed, RunResult
    from launcher.runtime.context import Context, init
    from launcher.schema import JobConfig

_LAZY = {
    "launch": "launcher.api",
    "init": "launcher.runtime.context",
    "Context": "launcher.runtime.context",
    "RunResult": "launcher.result",
    "JobFailed": "launcher.result",
    "JobConfig": "launcher.schema",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'launcher' has no attribute {name!r}")
