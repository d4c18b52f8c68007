"""The plan's open-files and process arithmetic, and the one line that refuses a launch the host cannot hold."""

from __future__ import annotations

import dataclasses

import pytest

from launcher.clusters import detect
from launcher.errors import HostLimitError
from launcher.hostinfo import HostFacts
from launcher.plan import build
from launcher.plan import limits as plan_limits
from launcher.plan.build import build_plan
from launcher.plan.render import render_plan
from launcher.rlimits import HostLimits
from launcher.schema import JobConfig, LogSettings, WorldSettings
from launcher.targets import FunctionTarget

FACTS = HostFacts(usable_cpus=8, installed_gpus=0, platform="linux", environ={}, hostname="host0",
                  run_id="run123", cwd="/work")
TYPICAL = HostLimits(open_files_soft=1024, open_files_hard=524288, pid_max=4194304, threads_max=1000000,
                     tasks_running=300)


def _plan(nprocs: int, limits: HostLimits = TYPICAL, log_dir: str | None = None):  # type: ignore[no-untyped-def]
    config = JobConfig(world=WorldSettings(nprocs=nprocs), logs=LogSettings(dir=log_dir))
    facts = dataclasses.replace(FACTS, limits=limits)
    return build_plan(config, FunctionTarget("main", path="/work/train.py"), (), detect({}), facts)


@pytest.mark.parametrize(("platform", "log_files", "per_rank"), [
    ("linux", False, 5),  # 2 FIFO fds (read and write in one), 2 multiprocessing pipes, 1 store connection
    ("linux", True, 7),  # + stdout.log, stderr.log
    ("darwin", False, 7),  # 4 FIFO fds: a read end and a write end each
])
def test_the_agent_needs_a_base_and_a_few_fds_per_rank(platform: str, log_files: bool, per_rank: int) -> None:
    base = plan_limits.AGENT_BASE_FDS
    assert plan_limits.agent_open_files(1, log_files, platform) == base + per_rank
    assert plan_limits.agent_open_files(256, log_files, platform) == base + 256 * per_rank


def test_256_ranks_fit_a_typical_host_and_the_plan_says_what_it_needs() -> None:
    plan = _plan(256)
    assert plan.limits == type(plan.limits)(agent_open_files=plan_limits.AGENT_BASE_FDS + 256 * 5, processes=261,
                                            open_files_soft=1024, open_files_hard=524288)
    assert ("  limits        about 1312 open files in the agent (its soft limit of 1024 raised to the hard 524288, "
            "as the forkserver's; the workers keep 1024); at least 261 processes") in render_plan(plan).splitlines()


def test_open_files_beyond_the_hard_limit_are_refused_in_one_line() -> None:
    limits = dataclasses.replace(TYPICAL, open_files_hard=20000)
    with pytest.raises(HostLimitError) as refused:
        _plan(10000, limits)
    assert str(refused.value) == (
        "world.nprocs: 10000 local processes need about 50032 open files in the launcher's agent, above this host's "
        "hard limit of 20000 (raise it, e.g. ulimit -Hn 50032 as root or nofile in /etc/security/limits.conf, "
        "or run at most 3993 processes per node)")
    assert "\n" not in str(refused.value)
    assert _plan(3993, limits).limits.agent_open_files <= 20000  # the count it names fits
    with pytest.raises(HostLimitError):
        _plan(3994, limits)


def test_log_files_count_against_the_limit() -> None:
    limits = dataclasses.replace(TYPICAL, open_files_hard=2000)
    assert _plan(300, limits).limits.agent_open_files == 1532
    with pytest.raises(HostLimitError, match="about 2132 open files"):
        _plan(300, limits, log_dir="/work/logs")


@pytest.mark.parametrize(("limits", "fragment", "fix"), [
    (HostLimits(user_processes=4096), "exceed the 4096 processes this user may run (ulimit -u)",
     "ulimit -u 5005"),
    (HostLimits(cgroup_pids_max=1024, cgroup_pids_current=24),
     "exceed the 1024 tasks this cgroup allows (pids.max, 24 running)", "raise the container's pids limit to 5029"),
    (HostLimits(pid_max=32768, tasks_running=30000), "exceed the 32768 tasks of kernel.pid_max (30000 running)",
     "sysctl -w kernel.pid_max=35005"),
    (HostLimits(threads_max=4000), "exceed the 4000 tasks of kernel.threads-max (0 running)",
     "sysctl -w kernel.threads-max=5005"),
])
def test_more_processes_than_the_host_allows_are_refused(limits: HostLimits, fragment: str, fix: str) -> None:
    with pytest.raises(HostLimitError) as refused:
        _plan(5000, limits)
    message = str(refused.value)
    assert message.startswith(f"world.nprocs: 5000 local processes and the launcher's own 5 {fragment}"), message
    assert fix in message


def test_a_job_that_just_fits_is_planned() -> None:
    assert _plan(4091, HostLimits(user_processes=4096)).limits.processes == 4096
    assert _plan(995, HostLimits(cgroup_pids_max=1024, cgroup_pids_current=24)).limits.processes == 1000


def test_unknown_limits_refuse_nothing() -> None:
    plan = _plan(10000, HostLimits())
    assert (plan.limits.open_files_soft, plan.limits.open_files_hard) == (None, None)
    assert "  limits        about 50032 open files in the agent; at least 10005 processes" in render_plan(plan)


def test_the_refusal_comes_before_any_per_rank_work(monkeypatch: pytest.MonkeyPatch) -> None:
    def per_rank_work(*args: object) -> None:
        raise AssertionError("ten million ranks planned before the refusal")

    monkeypatch.setattr(build, "plan_output", per_rank_work)
    with pytest.raises(HostLimitError, match=r"world\.nprocs: 10000000 local processes"):
        _plan(10_000_000)  # more processes than any kernel.pid_max allows (at most 2**22)
