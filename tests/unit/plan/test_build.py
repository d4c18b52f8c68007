"""Plan building without processes: ranks, backend, start method, rendezvous, threads; the dry-run text."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from launcher.clusters import detect
from launcher.errors import ConfigError, PlatformError, UsageError
from launcher.hostinfo import HostFacts
from launcher.plan.build import build_plan
from launcher.plan.model import CHOSEN_AT_LAUNCH
from launcher.plan.render import render_plan
from launcher.schema import JobConfig, LogSettings, WorldSettings
from launcher.targets import FunctionTarget, ModuleTarget, ScriptTarget, parse_target

pytestmark = pytest.mark.timeout(30)
GOLDEN = Path(__file__).parent / "golden"
FACTS = HostFacts(usable_cpus=8, installed_gpus=0, platform="linux", environ={}, hostname="host0",
                  run_id="run123", cwd="/work")


def _plan(world: WorldSettings | None = None, facts: HostFacts = FACTS, **job):  # type: ignore[no-untyped-def]
    config = JobConfig(world=world or WorldSettings(nprocs=2), **job)
    return build_plan(config, ScriptTarget("/work/train.py", "train.py"), ("--lr", "0.1"), detect({}), facts)


def test_single_node_ranks_and_contract():
    plan = _plan(WorldSettings(nprocs=4))
    assert [r.rank for r in plan.ranks] == [0, 1, 2, 3]
    env = plan.ranks[2].env
    assert env["RANK"] == "2" and env["LOCAL_RANK"] == "2" and env["WORLD_SIZE"] == "4"
    assert env["MASTER_ADDR"] == "127.0.0.1" and env["MASTER_PORT"] == CHOSEN_AT_LAUNCH
    assert env["TORCHELASTIC_RUN_ID"] == "run123" and env["TORCHELASTIC_USE_AGENT_STORE"] == "True"
    assert env["OMP_NUM_THREADS"] == "2"  # 8 usable CPUs / 4 processes
    assert plan.backend == "gloo" and plan.start.method == "forkserver" and plan.start.preload_torch
    assert plan.agent.in_server  # the agent forks from the same server


@pytest.mark.parametrize(("environ", "job_env", "expected"), [
    ({}, {}, "4"),
    ({"OMP_NUM_THREADS": "3"}, {}, "3"),
    ({"OMP_NUM_THREADS": "3"}, {"OMP_NUM_THREADS": "5"}, "5"),
])
def test_thread_count_keeps_a_user_value(environ, job_env, expected):
    plan = _plan(facts=dataclasses.replace(FACTS, environ=environ), env=job_env)
    assert plan.omp_num_threads == expected and plan.ranks[0].env["OMP_NUM_THREADS"] == expected


@pytest.mark.parametrize(("spec", "gpus", "expected"), [("cpu", 0, 8), ("auto", 0, 8), ("auto", 2, 2), ("gpu", 3, 3)])
def test_nprocs_words(spec, gpus, expected):
    plan = _plan(WorldSettings(nprocs=spec), facts=dataclasses.replace(FACTS, installed_gpus=gpus))
    assert plan.nprocs == expected


def test_gpu_nprocs_without_gpus_is_an_error():
    with pytest.raises(ConfigError, match="no GPU is visible"):
        _plan(WorldSettings(nprocs="gpu"))


@pytest.mark.parametrize(("backend", "gpus", "nprocs", "expected"), [
    ("auto", 0, 2, "gloo"), ("auto", 2, 2, "nccl"), ("auto", 2, 4, "gloo"), ("gloo", 2, 2, "gloo"),
])
def test_backend_auto(backend, gpus, nprocs, expected):
    plan = _plan(WorldSettings(nprocs=nprocs, backend=backend), facts=dataclasses.replace(FACTS, installed_gpus=gpus))
    assert plan.backend == expected


def test_nccl_on_windows_is_a_platform_error():
    with pytest.raises(PlatformError):
        _plan(WorldSettings(backend="nccl"), facts=dataclasses.replace(FACTS, platform="win32"))


@pytest.mark.parametrize(("platform", "method"), [("linux", "forkserver"), ("darwin", "spawn"), ("win32", "spawn")])
def test_start_method_per_platform(platform, method):
    assert _plan(facts=dataclasses.replace(FACTS, platform=platform)).start.method == method


def test_the_plan_says_what_the_platform_will_not_do():
    assert any("no process groups" in n for n in _plan(facts=dataclasses.replace(FACTS, platform="win32")).notes)
    assert not any("process groups" in n for n in _plan().notes)


def test_startup_only_variable_falls_back_to_spawn_with_the_reason():
    plan = _plan(env={"PYTHONHASHSEED": "0"})
    assert plan.start.method == "spawn" and "PYTHONHASHSEED" in plan.start.reason


def test_multinode_static_uses_node_rank_and_default_port():
    plan = _plan(WorldSettings(nprocs=2, nnodes="3", node_rank=1, master_addr="10.0.0.1"))
    assert [r.rank for r in plan.ranks] == [2, 3]
    assert plan.rendezvous.port == 29500 and plan.ranks[0].env["WORLD_SIZE"] == "6"


def test_elastic_rendezvous_leaves_ranks_to_the_rendezvous():
    plan = _plan(WorldSettings(nprocs=2, nnodes="1:4", rdzv_backend="c10d", rdzv_endpoint="h:29400"))
    assert plan.rendezvous.min_nodes == 1 and plan.rendezvous.max_nodes == 4
    assert plan.ranks[0].rank is None and plan.ranks[0].env["RANK"] == CHOSEN_AT_LAUNCH


@pytest.mark.parametrize(("world", "error", "fragment"), [
    (WorldSettings(standalone=True, nnodes="2"), UsageError, "--standalone conflicts with --nnodes"),
    (WorldSettings(nnodes="1:4"), ConfigError, "a range needs an elastic rendezvous"),
    (WorldSettings(nnodes="two"), ConfigError, "expected N or MIN:MAX"),
    (WorldSettings(nnodes="2", node_rank=2), ConfigError, "node_rank: 2 but only 2 node(s)"),
    (WorldSettings(rdzv_backend="c10d"), ConfigError, "needs an endpoint"),
])
def test_conflicting_world_settings(world, error, fragment):
    with pytest.raises(error) as caught:
        _plan(world)
    assert fragment in str(caught.value)


def test_a_log_dir_keeps_every_rank_in_files():
    plan = _plan(WorldSettings(nprocs=2), logs=LogSettings(dir="/runs/a", redirects="0:3,1:0", tee="1:2"))
    assert plan.ranks[0].stdout == "/runs/a/attempt_0/0/stdout.log"
    assert plan.ranks[1].stderr == "/runs/a/attempt_0/1/stderr.log"
    assert plan.ranks[1].error_file == "/runs/a/attempt_0/1/error.json"
    assert plan.output.hidden == {(0, "stdout"), (0, "stderr")}  # rank 0 redirected, not teed; rank 1 not
    assert _plan().ranks[0].stdout is None  # no log dir: console only


def test_bad_redirect_spec():
    with pytest.raises(ConfigError, match="expected 0-3"):
        _plan(logs=LogSettings(redirects="all"))


def test_kwargs_only_for_functions():
    with pytest.raises(ConfigError, match="only a function entrypoint"):
        _plan(kwargs={"lr": 1})


def test_dry_run_text_matches_golden():
    config = JobConfig(world=WorldSettings(nprocs=2), seed=3, env={"JOB": "x"})
    plan = build_plan(config, FunctionTarget("main", path="/work/train.py"), ("a",), detect({}), FACTS)
    assert render_plan(plan) + "\n" == (GOLDEN / "dry_run.txt").read_text()


@pytest.mark.parametrize(("text", "expected"), [
    ("train.py", ScriptTarget("/work/train.py", "train.py")),
    ("-m pkg.train", ModuleTarget("pkg.train")),
    ("pkg.train:main", FunctionTarget("main", module="pkg.train")),
    ("sub/train.py:main", FunctionTarget("main", path="/work/sub/train.py")),
    ("C:train.py", ScriptTarget("/work/C:train.py", "C:train.py")),
])
def test_target_forms(text, expected):
    assert parse_target(text, base=Path("/work")) == expected

