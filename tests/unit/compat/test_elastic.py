"""``launcher.compat.elastic``: the probe on the installed torch, what it reports when an internal goes,
accessors that refuse rather than answer "no workers", and the agent's fallback to elastic's own monitoring.

The fallback end to end (a real job with the probe failing) is in tests/multiproc/test_compat_fallback.py.
"""

from __future__ import annotations

import contextlib
import multiprocessing.connection
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
from torch.distributed.elastic.agent.server import local_elastic_agent
from torch.distributed.elastic.agent.server.api import SimpleElasticAgent
from torch.distributed.elastic.agent.server.local_elastic_agent import LocalElasticAgent
from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, start_processes
from torch.distributed.elastic.multiprocessing import api as multiprocessing_api
from torch.distributed.elastic.multiprocessing.api import MultiprocessContext
from torch.multiprocessing.spawn import ProcessContext

from launcher import returns
from launcher.clusters import detect
from launcher.compat import elastic
from launcher.errors import HostLimitError
from launcher.hostinfo import HostFacts
from launcher.plan.build import build_plan
from launcher.plan.model import LaunchPlan
from launcher.schema import JobConfig, MonitorSettings, WorldSettings
from launcher.supervise import engine

pytestmark = pytest.mark.timeout(60)
FACTS = HostFacts(usable_cpus=8, installed_gpus=0, platform="linux", environ={}, hostname="host0",
                  run_id="run123", cwd="/work")


@pytest.fixture(autouse=True)
def fresh_probe() -> Iterator[None]:
    """The probe's cache is cleared before and after (after monkeypatch has restored what it faked)."""
    elastic.probe.cache_clear()
    yield
    elastic.probe.cache_clear()


def test_nothing_is_missing_on_the_installed_torch() -> None:
    assert elastic.probe() == ()


def _init_without_ret_vals(self: Any, *args: Any, **kwargs: Any) -> None:
    self._pc = None  # stores the processes' context, but no return queues


def _init_without_processes(self: Any, *args: Any, **kwargs: Any) -> None:
    self.error_files = {}


def _poll_reading_elsewhere(self: Any) -> None:
    return None  # a torch whose _poll no longer reads return values from _ret_vals as queues


def _wrap_returning_elsewhere(local_rank: int, fn: Any, *args: Any) -> None:
    fn()  # a torch whose _wrap no longer puts the value on a queue


def _start_processes_elsewhere(*args: Any, **kwargs: Any) -> None:
    return None  # a torch whose start_processes does not build MultiprocessContext by its module's name


@pytest.mark.parametrize(("owner", "name", "value", "reported"), [
    (MultiprocessContext, "__init__", _init_without_ret_vals, "MultiprocessContext._ret_vals"),
    (ProcessContext, "__init__", _init_without_processes, "ProcessContext.processes"),
    (SimpleElasticAgent, "_exit_barrier", None, "LocalElasticAgent._exit_barrier"),
    (LocalElasticAgent, "_monitor_workers", None, "LocalElasticAgent._monitor_workers"),
    (DefaultLogsSpecs, "_make_log_dir", None, "DefaultLogsSpecs._make_log_dir"),
    (MultiprocessContext, "_poll", _poll_reading_elsewhere, "MultiprocessContext._poll (_ret_vals, empty, get)"),
    (multiprocessing_api, "_wrap", _wrap_returning_elsewhere, "multiprocessing.api._wrap (put)"),
    (local_elastic_agent, "start_processes", _start_processes_elsewhere,
     "start_processes (MultiprocessContext by name)"),
])
def test_a_missing_internal_is_reported(owner: type, name: str, value: Any, reported: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    if value is None:
        monkeypatch.delattr(owner, name)
        if name == "_monitor_workers":  # LocalElasticAgent's own went; SimpleElasticAgent's abstract one too
            monkeypatch.delattr(SimpleElasticAgent, name)
    else:
        monkeypatch.setattr(owner, name, value)
    assert elastic.probe() == (reported,)


def test_the_probe_is_cached_until_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    assert elastic.probe() == ()
    monkeypatch.setattr(MultiprocessContext, "__init__", _init_without_ret_vals)
    assert elastic.probe() == ()  # the answer of this process's first look
    elastic.probe.cache_clear()
    assert elastic.probe() == ("MultiprocessContext._ret_vals",)


@pytest.mark.parametrize("pcontext", [
    SimpleNamespace(),
    SimpleNamespace(_pc=None),
    SimpleNamespace(_pc=SimpleNamespace()),
    SimpleNamespace(_pc=SimpleNamespace(procs=[1, 2])),
], ids=["no _pc", "_pc None", "_pc without processes", "processes renamed"])
def test_worker_processes_refuse_rather_than_answer_none(pcontext: Any) -> None:
    with pytest.raises(elastic.ElasticChanged, match="no worker processes"):
        elastic.worker_processes(pcontext)


@pytest.mark.parametrize("pcontext", [
    SimpleNamespace(),
    SimpleNamespace(_ret_vals=None),
    SimpleNamespace(_ret_vals=[object()]),
], ids=["no _ret_vals", "_ret_vals None", "_ret_vals a list"])
def test_return_queues_refuse_rather_than_answer_none(pcontext: Any) -> None:
    with pytest.raises(elastic.ElasticChanged, match="no return queues"):
        elastic.return_queues(pcontext)


def test_the_accessors_pass_what_is_there_through() -> None:
    processes, queues = [object(), object()], {0: object()}
    assert elastic.worker_processes(SimpleNamespace(_pc=SimpleNamespace(processes=processes))) == processes
    assert elastic.return_queues(SimpleNamespace(_ret_vals=queues)) is queues


def _factory() -> Any:
    return local_elastic_agent.start_processes.__globals__["MultiprocessContext"]


def test_shared_returns_swaps_the_context_elastic_builds_for_the_block() -> None:
    assert _factory() is MultiprocessContext
    with elastic.shared_returns():
        assert _factory() is elastic.SharedReturnsContext
    assert _factory() is MultiprocessContext


def test_shared_returns_leaves_elastic_alone_where_the_probe_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(MultiprocessContext, "_poll", _poll_reading_elsewhere)
    with elastic.shared_returns():
        assert _factory() is MultiprocessContext


@pytest.mark.skipif(sys.platform != "linux", reason="forks a process group from the test process")
@pytest.mark.parametrize("shared", [False, True], ids=["elastic's queues", "one shared pipe"])
def test_the_accessors_read_a_running_elastic_context(shared: bool, tmp_path: Path,
                                                      no_leftover_children: None) -> None:
    """The names the probe checks statically hold, on this torch, what the agent takes them for."""
    with elastic.shared_returns() if shared else contextlib.nullcontext():
        pcontext = start_processes(name="compat", entrypoint=os.getpid, args={0: (), 1: (), 2: ()},
                                   envs={0: {}, 1: {}, 2: {}}, logs_specs=DefaultLogsSpecs(log_dir=str(tmp_path)),
                                   start_method="fork")
    try:
        assert isinstance(pcontext, elastic.SharedReturnsContext) is shared
        processes = elastic.worker_processes(pcontext)
        queues = elastic.return_queues(pcontext)
        assert len(processes) == 3 and sorted(queues) == [0, 1, 2]
        assert all(isinstance(queue, returns.ReturnSlot) is shared for queue in queues.values())
        assert len({elastic.queue_reader(queue) for queue in queues.values()}) == (1 if shared else 3)
        deadline = time.monotonic() + 30
        waiting = {elastic.queue_reader(queue) for queue in queues.values()}
        while waiting and time.monotonic() < deadline:
            multiprocessing.connection.wait(list(waiting), timeout=1.0)  # each value wakes its queue's reader
            waiting = {elastic.queue_reader(queue) for queue in queues.values() if queue.empty()}
        assert not waiting
        result = pcontext.wait(30)
        assert result is not None and not result.is_failed()
        assert result.return_values == {rank: process.pid for rank, process in enumerate(processes)}
    finally:
        pcontext.close()


# -- the agent's fallback -----------------------------------------------------------------------------


class _Stop(Exception):
    pass


class _RecordedAgent:
    """Stands in for LauncherAgent: records how run_agent builds it, then stops the run."""

    built: ClassVar[dict[str, Any]] = {}

    def __init__(self, **kwargs: Any) -> None:
        type(self).built = kwargs

    def run(self) -> None:
        raise _Stop


def _plan() -> LaunchPlan:
    from launcher.targets import ScriptTarget

    config = JobConfig(world=WorldSettings(nprocs=2), monitor=MonitorSettings(hang_timeout=30))
    return build_plan(config, ScriptTarget("/work/train.py", "train.py"), (), detect({}), FACTS)


def _build_agent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    from launcher.supervise import agent, rendezvous

    monkeypatch.setattr(agent, "LauncherAgent", _RecordedAgent)
    monkeypatch.setattr(rendezvous, "handler_for", lambda *args: SimpleNamespace(shutdown=lambda: None))
    monkeypatch.setattr(engine, "fifos_supported", lambda: False)
    monkeypatch.setattr(engine, "quiet_engine_logs", lambda environ: None)  # leave this process's loggers alone
    _RecordedAgent.built = {}
    with pytest.raises(_Stop):
        engine.run_agent(_plan(), str(tmp_path), SimpleNamespace(watch=lambda pids: None))
    return _RecordedAgent.built


def test_the_agent_monitors_itself_when_nothing_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    built = _build_agent(monkeypatch, tmp_path)
    assert built["own_monitoring"] is True and built["hang"] is not None
    assert built["spec"].monitor_interval < 1e-3  # it waits on exits, not on elastic's poll
    assert "warning" not in capsys.readouterr().err


def test_the_agent_falls_back_to_elastic_monitoring(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(MultiprocessContext, "__init__", _init_without_ret_vals)  # a torch without _ret_vals
    built = _build_agent(monkeypatch, tmp_path)
    assert built["own_monitoring"] is False
    assert built["hang"] is None  # the watchdog needs the launcher's own monitoring
    assert built["spec"].monitor_interval == WorldSettings().monitor_interval  # elastic polls
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "MultiprocessContext._ret_vals" in warnings[0]
    assert "elastic's own monitoring is used" in warnings[0]


def test_without_the_shared_pipe_the_forkserver_carries_at_most_125_ranks(monkeypatch: pytest.MonkeyPatch,
                                                                          tmp_path: Path) -> None:
    """Elastic's own queues put two fds per rank in every worker: the launch is refused, not a traceback."""
    from launcher.supervise import agent, rendezvous

    monkeypatch.setattr(MultiprocessContext, "__init__", _init_without_ret_vals)
    monkeypatch.setattr(agent, "LauncherAgent", _RecordedAgent)
    monkeypatch.setattr(rendezvous, "handler_for", lambda *args: SimpleNamespace(shutdown=lambda: None))
    monkeypatch.setattr(engine, "fifos_supported", lambda: False)
    monkeypatch.setattr(engine, "quiet_engine_logs", lambda environ: None)
    config = JobConfig(world=WorldSettings(nprocs=126))
    from launcher.targets import ScriptTarget

    plan = build_plan(config, ScriptTarget("/work/train.py", "train.py"), (), detect({}), FACTS)
    with pytest.raises(HostLimitError, match="at most 125 ranks' worth"):
        engine.run_agent(plan, str(tmp_path), SimpleNamespace(watch=lambda pids: None))
