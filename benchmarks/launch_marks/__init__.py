"""Timestamps for the launch profile, written by the launcher, its forkserver and the workers.

Only active when ``LAUNCHER_BENCH_MARKS`` names a directory: each process
appends ``time<TAB>rank<TAB>label`` lines to its own file there. The launcher's
code is never edited: ``launcher_main`` wraps its functions in-process,
``server`` and ``ready`` are added to the forkserver's preload list.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from typing import Any

MARKS_VAR = "LAUNCHER_BENCH_MARKS"


def mark(label: str, when: float | None = None) -> None:
    where = os.environ.get(MARKS_VAR)
    if not where:
        return
    stamp = time.time() if when is None else when
    with open(os.path.join(where, f"marks-{os.getpid()}.tsv"), "a") as out:
        out.write(f"{stamp!r}\t{os.environ.get('RANK', '-')}\t{label}\n")


def wrap(owner: Any, name: str, label: str) -> None:
    """Replace ``owner.name`` with a wrapper that marks ``label start`` and ``label end``."""
    original: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        mark(f"{label} start")
        try:
            return original(*args, **kwargs)
        finally:
            mark(f"{label} end")

    setattr(owner, name, timed)
