"""Timestamps at the launcher's steps, for the launch profile (``benchmarks/launch_profile.py``).

Off unless ``LAUNCHER_TRACE_DIR`` names a folder when the process starts: then
every process of the job (the launcher, its forkserver, the agent, each worker)
appends ``time<TAB>rank<TAB>label`` lines to its own file there
(``marks-<pid>.tsv``). Off, ``mark`` is one function call that tests a global.
Standard library only; imported by both sides.
"""

from __future__ import annotations

import os
import time

TRACE_DIR_VARIABLE = "LAUNCHER_TRACE_DIR"
_folder = os.environ.get(TRACE_DIR_VARIABLE) or None


def mark(label: str, when: float | None = None) -> None:
    """Record that this process reached ``label`` now (or at ``when``, seconds since the epoch)."""
    if _folder is None:
        return
    stamp = time.time() if when is None else when
    with open(os.path.join(_folder, f"marks-{os.getpid()}.tsv"), "a", encoding="utf-8") as out:
        out.write(f"{stamp!r}\t{os.environ.get('RANK', '-')}\t{label}\n")
