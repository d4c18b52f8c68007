"""Progress of this worker, as the hang watchdog sees it.

``tick()`` is called by ``ctx.step()`` and by the context's loaders; a
heartbeat thread (``runtime.threads``) touches the rank's progress file when
the count moved, and the launcher reads the file's time. No CUDA calls.
"""

from __future__ import annotations

import os

from launcher.runtime.threads import BackgroundLoop

_count = 0


def tick(steps: int = 1) -> None:
    global _count
    _count += steps


def count() -> int:
    return _count


def start_heartbeat(progress_file: str, interval: float) -> BackgroundLoop:
    """Touch ``progress_file`` every ``interval`` seconds in which progress was made."""
    seen = -1

    def beat() -> None:
        nonlocal seen
        if _count != seen:
            seen = _count
            with open(progress_file, "a"):
                pass
            os.utime(progress_file)

    return BackgroundLoop("launcher-heartbeat", beat, interval).start()
