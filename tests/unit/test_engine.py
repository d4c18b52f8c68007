"""The agent's process environment while workers are started."""

from __future__ import annotations

import os

import pytest

from launcher.engine import process_environment

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


@pytest.mark.parametrize(("trigger_raised_after", "expected"), [
    (0.5, (1, None, False)),  # it raised before the rank whose failure stopped the job: the root cause
    (-0.5, (None, "SIGTERM", True)),  # it raised after that rank (a peer gone): a consequence
    (None, (None, "SIGTERM", True)),  # that rank raised nothing (killed, os._exit): nothing to compare
])
def test_a_stopped_rank_that_raised_first_is_the_root_cause(  # type: ignore[no-untyped-def]
    trigger_raised_after, expected, tmp_path, monkeypatch
) -> None:
    """Rank 1 raised; rank 0 failed too (a gloo error) and was seen first, so rank 1 was stopped on its way out."""
    import json
    import signal

    from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

    from launcher.bootstrap import _report_failure
    from launcher.engine import _to_rank_failure

    error_file = tmp_path / "error.json"
    monkeypatch.setenv("TORCHELASTIC_ERROR_FILE", str(error_file))
    try:
        raise KeyError("shard")
    except KeyError as error:
        _report_failure(error)  # what the bootstrap writes when the user's code raises
    raised_at = json.loads(error_file.read_text())["message"]["extraInfo"]["time"]
    failure = ProcessFailure(local_rank=1, pid=4242, exitcode=-signal.SIGTERM, error_file=str(error_file))
    first_raise = None if trigger_raised_after is None else raised_at + trigger_raised_after
    result = _to_rank_failure(1, failure, seen_at=raised_at + 1, stopped=True, last_lines=(),
                              first_raise=first_raise)
    assert (result.exitcode, result.signal, result.stopped_by_launcher) == expected
    assert result.message == "KeyError: 'shard'" and result.timestamp == raised_at
