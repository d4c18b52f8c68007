"""Known error texts that slipped past the preflight get the same one-line fixes."""

from __future__ import annotations

import pytest

from launcher.hints import FIX_CUDA_FORK, FIX_GUARD_DEF, FIX_MAIN_GUARD, FIX_PICKLE, FIX_PORT, known_error_hints

pytestmark = pytest.mark.timeout(30)

BOOTSTRAP = """RuntimeError:
        An attempt has been made to start a new process before the
        current process has finished its bootstrapping phase.
"""


@pytest.mark.parametrize(
    ("text", "fix"),
    [
        (BOOTSTRAP, FIX_MAIN_GUARD),
        ("RuntimeError: Cannot re-initialize CUDA in forked subprocess. To use CUDA with", FIX_CUDA_FORK),
        ("_pickle.PicklingError: Can't pickle <function <lambda> at 0x7f>: attribute lookup", FIX_PICKLE),
        ("AttributeError: Can't pickle local object 'main.<locals>.work'", FIX_PICKLE),
        ("AttributeError: Can't get local object 'main.<locals>.work'", FIX_PICKLE),
        ("AttributeError: Can't get attribute 'collate' on <module '__main__' (built-in)>", FIX_GUARD_DEF),
        (
            "AttributeError: Can't get attribute 'collate' on <module '__mp_main__' from 'x.py'>",
            FIX_GUARD_DEF,
        ),
        (
            "The server socket has failed to listen on [::]:29500 (errno: 98 - Address already in use)",
            FIX_PORT,
        ),
        ("OSError: [Errno 98] Address already in use", FIX_PORT),
        ("ValueError: loss is nan", None),
    ],
)
def test_known_error_hints(text: str, fix: str | None) -> None:
    assert known_error_hints(text) == fix
