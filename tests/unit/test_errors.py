"""The error hierarchy survives the trip from the agent process to the launcher; its text never nests parentheses."""

from __future__ import annotations

import pickle

import pytest

from launcher.errors import (
    ConfigError,
    LauncherError,
    PlatformError,
    PreflightError,
    RendezvousFailed,
    TargetError,
    UsageError,
)

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("kind", [LauncherError, UsageError, ConfigError, TargetError, PreflightError, PlatformError,
                                  RendezvousFailed])
def test_errors_pickle_with_their_hint(kind: type[LauncherError]) -> None:
    error = kind("port: master port 1 is already in use", "pick another master port")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is kind
    assert (copy.message, copy.hint, str(copy)) == (error.message, error.hint, str(error))


@pytest.mark.parametrize(("hint", "text"), [
    ("", "bad value"),
    ("use 2", "bad value (use 2)"),
    ("give it once (--nprocs and --nproc-per-node are the same)",
     "bad value; give it once (--nprocs and --nproc-per-node are the same)"),
])
def test_a_hint_never_nests_parentheses(hint: str, text: str) -> None:
    assert str(UsageError("bad value", hint)) == text
