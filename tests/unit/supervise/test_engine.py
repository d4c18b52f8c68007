"""The agent's process environment while workers are started."""

from __future__ import annotations

import os

import pytest

from launcher.supervise.engine import process_environment

pytestmark = pytest.mark.timeout(30)


def test_process_environment_sets_then_restores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAUNCHER_TEST_KEPT", "before")
    monkeypatch.delenv("LAUNCHER_TEST_NEW", raising=False)
    with process_environment({"LAUNCHER_TEST_KEPT": "during", "LAUNCHER_TEST_NEW": "1"}):
        assert (os.environ["LAUNCHER_TEST_KEPT"], os.environ["LAUNCHER_TEST_NEW"]) == ("during", "1")
    assert os.environ["LAUNCHER_TEST_KEPT"] == "before" and "LAUNCHER_TEST_NEW" not in os.environ


def test_process_environment_restores_after_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAUNCHER_TEST_NEW", raising=False)
    with pytest.raises(RuntimeError), process_environment({"LAUNCHER_TEST_NEW": "1"}):
        raise RuntimeError("the agent failed")
    assert "LAUNCHER_TEST_NEW" not in os.environ
