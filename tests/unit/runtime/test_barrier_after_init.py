"""init() asks torch for its barrier after init for its own call only, and never over the user's choice."""

from __future__ import annotations

import os

import pytest

from launcher.runtime.context import INIT_BARRIER_VARIABLE, _barrier_after_init


@pytest.mark.parametrize("users", [None, "0", "1"])
def test_the_barrier_is_asked_for_during_init_only_and_a_users_value_stays(users: str | None,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    if users is None:
        monkeypatch.delenv(INIT_BARRIER_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(INIT_BARRIER_VARIABLE, users)
    with _barrier_after_init():
        assert os.environ[INIT_BARRIER_VARIABLE] == (users or "1")
    assert os.environ.get(INIT_BARRIER_VARIABLE) == users


def test_the_variable_is_restored_after_a_failed_init(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(INIT_BARRIER_VARIABLE, raising=False)
    with pytest.raises(RuntimeError), _barrier_after_init():
        raise RuntimeError("the store could not be reached")
    assert INIT_BARRIER_VARIABLE not in os.environ
