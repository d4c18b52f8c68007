"""``launcher.compat.mp``: its checks on every CPython the machine has, and the plan's fallbacks in-process.

``mp_checks.py`` runs, with real processes, under each of 3.10-3.13 (pyenv's,
without torch) with ``-S``: no site-packages, so it proves that the probe, the
forkserver mechanism and the plan need nothing but the standard library. A
missing interpreter skips locally and fails in CI (``CI=true``).
"""

from __future__ import annotations

import dataclasses
import glob
import os
import shutil
import subprocess
import sys
from multiprocessing import forkserver
from pathlib import Path

import pytest

from launcher.clusters import detect
from launcher.compat import mp
from launcher.hostinfo import HostFacts
from launcher.plan.build import build_plan, plan_start
from launcher.plan.model import LaunchPlan
from launcher.schema import JobConfig, WorldSettings
from launcher.targets import ScriptTarget
from launcher.testing.processes import TAG_VARIABLE

pytestmark = pytest.mark.timeout(120)
REPO = Path(__file__).resolve().parents[3]
CHECKS = Path(__file__).resolve().parent / "mp_checks.py"
VERSIONS = ("3.10", "3.11", "3.12", "3.13")
FACTS = HostFacts(usable_cpus=8, installed_gpus=0, platform="linux", environ={}, hostname="host0",
                  run_id="run123", cwd="/work")
FALLBACKS = {
    "agent_in_server": "the agent runs in the launcher process",
    "forked_workers": "workers are spawned",
    "server_pipe": "only the reaper stops workers whose launcher died",
    "server_control": "the launcher exits through the interpreter's normal shutdown",
    "temp_dir": "a long TMPDIR is used as it is",
    "tracker_group": "a SIGKILL of the launcher's process group may leave semaphores in /dev/shm",
    "sibling_pipes": "under fork, each worker keeps two pipes of every worker forked before it",
}


def find_python(version: str) -> str | None:
    """A CPython ``version`` interpreter: pyenv's (newest patch release) first, then PATH, then this one."""
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found = sorted(glob.glob(os.path.join(root, "versions", f"{version}.*", "bin", f"python{version}")),
                   key=lambda path: [int(part) if part.isdigit() else 0
                                     for part in Path(path).parents[1].name.split(".")])
    if found:
        return found[-1]
    on_path = shutil.which(f"python{version}")
    if on_path:
        return on_path
    return sys.executable if f"{sys.version_info[0]}.{sys.version_info[1]}" == version else None


@pytest.mark.parametrize("version", VERSIONS)
def test_mp_checks_pass_on_each_python(version: str, token: str) -> None:
    python = find_python(version)
    if python is None:
        reason = f"no CPython {version} on this machine (pyenv or python{version} on PATH)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}: CI must test compat.mp on every supported Python")
        pytest.skip(reason)
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTHON")}
    env["PYTHONPATH"] = str(REPO)
    env[TAG_VARIABLE] = token  # the forkservers and children it starts must all be gone after the test
    ran = subprocess.run([python, "-S", str(CHECKS)], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=100, stdin=subprocess.DEVNULL)
    output = f"{ran.stdout}\n{ran.stderr}"
    assert ran.returncode == 0, f"{python} {CHECKS.name} failed:\n{output}"
    assert f"checks passed on python {version}." in ran.stdout, output


# -- in-process, on this Python: the plan's fallbacks ---------------------------------------------


@pytest.fixture(autouse=True)
def fresh_probe():  # type: ignore[no-untyped-def]
    """The probe's cache is cleared before and after (after monkeypatch has restored what it faked)."""
    mp.probe.cache_clear()
    yield
    mp.probe.cache_clear()


def _config(start_method: str = "auto") -> JobConfig:
    return JobConfig(world=WorldSettings(nprocs=2, start_method=start_method))  # type: ignore[arg-type]


def _plan(start_method: str = "auto") -> LaunchPlan:
    return build_plan(_config(start_method), ScriptTarget("/work/train.py", "train.py"), (), detect({}), FACTS)


def test_nothing_is_missing_here() -> None:
    assert mp.probe() == mp.Problems()
    plan = _plan()
    assert plan.start.method == "forkserver" and plan.start.preload_torch and plan.agent.in_server
    assert not any(note.endswith(tuple(FALLBACKS.values())) for note in plan.notes)


def test_notes_list_each_missing_feature_with_its_fallback() -> None:
    problems = mp.Problems(**{name: f"no {name} here" for name in FALLBACKS})
    assert problems.notes() == tuple(f"no {name} here: {fallback}" for name, fallback in FALLBACKS.items())
    assert mp.Problems().notes() == ()
    assert mp.Problems(temp_dir="why").notes() == ("why: a long TMPDIR is used as it is",)


def test_an_authenticating_server_puts_the_agent_in_the_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forkserver._forkserver, "_forkserver_authkey", b"key", raising=False)
    reason = mp.probe().agent_in_server
    assert reason is not None and "authenticates" in reason
    assert dataclasses.replace(mp.probe(), agent_in_server=None) == mp.Problems()  # nothing else
    with pytest.raises(RuntimeError, match="authenticates"):
        mp.use_parent_server()
    start = plan_start(_config(), FACTS)
    assert start.start.method == "forkserver" and start.start.preload_torch  # the workers still fork
    assert not start.agent.in_server and start.agent.reason == reason
    assert f"{reason}: the agent runs in the launcher process" in _plan().notes


@pytest.mark.parametrize("name", ["_clear", "_run_exitfuncs"])
@pytest.mark.parametrize("requested", ["auto", "forkserver", "fork", "spawn"])
def test_without_atexit_internals_workers_are_spawned(name: str, requested: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import atexit

    monkeypatch.delattr(atexit, name)
    reason = mp.probe().forked_workers
    assert reason == f"atexit has no {name}"
    plan = _plan(requested)
    assert plan.start.method == "spawn" and not plan.start.preload_torch
    assert not plan.agent.in_server
    assert f"{reason}: workers are spawned" in plan.notes
    if requested != "spawn":
        assert reason in plan.start.reason


@pytest.mark.parametrize("field", list(FALLBACKS))
def test_each_problem_reaches_the_plan_notes(field: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mp, "probe", lambda: mp.Problems(**{field: "faked"}))
    plan = _plan()
    assert f"faked: {FALLBACKS[field]}" in plan.notes
    assert plan.agent.in_server == (field not in ("agent_in_server", "forked_workers"))
    assert plan.start.method == ("spawn" if field == "forked_workers" else "forkserver")


def test_without_server_internals_the_accessors_do_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(forkserver._forkserver, "_forkserver_alive_fd")
    problems = mp.probe()
    assert problems.agent_in_server == problems.server_pipe == problems.server_control
    assert "_forkserver_alive_fd" in str(problems.server_pipe)
    assert mp.forkserver_pid() is None and mp.run_exit_function() is False
    mp.release_server_pipe()
    mp.stop_forkserver()
    with pytest.raises(RuntimeError):
        mp.use_parent_server()
    assert not _plan().agent.in_server


def test_a_probe_cache_cleared_sees_the_restored_python() -> None:
    assert "_forkserver_authkey" not in vars(forkserver._forkserver)
    assert mp.probe() == mp.Problems()
