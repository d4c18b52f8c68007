"""The one-line fixes of known multiprocessing and port mistakes, and how to spot them in an error text.

One text per mistake, used everywhere it can surface: the static preflight
(``launcher.preflight``), the store's bind (``launcher.supervise.rendezvous``),
the DataLoader check in the worker (``launcher.runtime.data``) and the failure
summary, which finds them in a rank's error (``known_error_hints``).

Standard library only; imported by both sides.
"""

from __future__ import annotations

import re

FIX_MAIN_GUARD = (
    'move the code that starts processes under `if __name__ == "__main__":` (or into a function called there)'
)
FIX_PICKLE = (
    "use a function defined at module top level (functools.partial for arguments), not a lambda or local def"
)
FIX_GUARD_DEF = (
    'define it at module top level outside `if __name__ == "__main__":`, or in an importable module'
)
FIX_CUDA_FORK = (
    "do not use CUDA before a fork: use the spawn or forkserver start method, or CUDA only in children"
)
FIX_PORT = "pick another master port, or leave it unset so the launcher chooses a free one"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"before the\s+current process has finished its\s+bootstrapping phase", re.S),
        FIX_MAIN_GUARD,
    ),
    (re.compile(r"Cannot re-initialize CUDA in forked subprocess"), FIX_CUDA_FORK),
    (re.compile(r"Can't get attribute '[^']+' on <module '__(mp_)?main__'"), FIX_GUARD_DEF),
    (re.compile(r"Can't (pickle|get local object)|pickle local object"), FIX_PICKLE),
    (re.compile(r"address already in use|EADDRINUSE|Errno 98|WinError 10048", re.I), FIX_PORT),
)


def known_error_hints(text: str) -> str | None:
    """The one-line fix for a known multiprocessing/port error found in ``text``, or None."""
    for pattern, fix in _PATTERNS:
        if pattern.search(text):
            return fix
    return None
