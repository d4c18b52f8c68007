"""Plan building without processes: ranks, backend, start method, rendezvous, threads; the dry-run text."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from launcher.clusters import detect
from launcher.errors import ConfigError, PlatformError, UsageError
from launcher.hostinfo import HostFacts
from launcher.network import Route
from launcher.plan.build import build_plan, rendezvous_host
from launcher.plan.model import CHOSEN_AT_LAUNCH, HangPlan, StopPlan
from launcher.plan.render import render_plan
from launcher.preflight.checks import run_static_checks, static_inputs
from launcher.schema import CheckpointSettings, JobConfig, LogSettings, MonitorSettings, WorldSettings
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


@pytest.mark.parametrize(("world", "environ", "expected"), [
    (WorldSettings(nnodes="2", master_addr="10.0.0.1"), {}, "none"),  # torchrun's: its nodes can join
    (WorldSettings(nnodes="1:2", rdzv_backend="c10d", rdzv_endpoint="h:29400"), {}, "none"),
    (WorldSettings(nnodes="2", master_addr="10.0.0.1"), {"SLURM_JOB_ID": "4242"}, "4242"),
    (WorldSettings(nnodes="2", master_addr="10.0.0.1", rdzv_id="mine"), {"SLURM_JOB_ID": "4242"}, "mine"),
    (WorldSettings(nnodes="1"), {"SLURM_JOB_ID": "4242"}, "run123"),  # one node: a fresh id, nobody to meet
])
def test_nodes_of_one_job_agree_on_the_run_id_without_being_told(world, environ, expected):
    plan = _plan(world, facts=dataclasses.replace(FACTS, environ=environ))
    assert plan.rendezvous.run_id == expected and plan.ranks[0].env["TORCHELASTIC_RUN_ID"] == expected


C10D_TWO_NODES = WorldSettings(nprocs=2, nnodes="2", rdzv_backend="c10d", rdzv_endpoint="10.0.0.1:29400")
OTHER_NODE = Route("10.0.0.1", "10.0.0.2", "eth1", peer_is_local=False)


def test_gloo_and_nccl_take_the_interface_that_reaches_the_rendezvous_host():
    plan = _plan(C10D_TWO_NODES, facts=dataclasses.replace(FACTS, route=OTHER_NODE))
    assert plan.network is not None and plan.network.interface == "eth1"
    env = plan.ranks[1].env
    assert env["GLOO_SOCKET_IFNAME"] == env["NCCL_SOCKET_IFNAME"] == "eth1"
    assert "eth1 holds 10.0.0.2, the address that reaches the rendezvous host 10.0.0.1" in render_plan(plan)
    assert "is_host" not in plan.rendezvous.conf  # not this node's address: elastic's own check stays


def test_the_users_interface_is_kept_and_said_so():
    facts = dataclasses.replace(FACTS, route=OTHER_NODE, environ={"NCCL_SOCKET_IFNAME": "ib0"})
    plan = _plan(C10D_TWO_NODES, facts=facts, env={"GLOO_SOCKET_IFNAME": "eth9"})
    assert plan.ranks[0].env["GLOO_SOCKET_IFNAME"] == "eth9" and "NCCL_SOCKET_IFNAME" not in plan.ranks[0].env
    assert plan.network is not None and plan.network.variables == {}
    assert "GLOO_SOCKET_IFNAME, NCCL_SOCKET_IFNAME kept as the user set it" in plan.network.reason


def test_the_node_whose_address_is_the_endpoint_hosts_the_store():
    route = Route("10.0.0.1", "10.0.0.1", "eth1", peer_is_local=True)
    plan = _plan(C10D_TWO_NODES, facts=dataclasses.replace(FACTS, route=route))
    assert plan.rendezvous.conf["is_host"] == "true"
    assert any("hosts the rendezvous store" in note for note in plan.notes)
    said = _plan(dataclasses.replace(C10D_TWO_NODES, rdzv_conf={"is_host": "0"}),
                 facts=dataclasses.replace(FACTS, route=route))
    assert said.rendezvous.conf["is_host"] == "0"  # the user's word wins
    loopback = Route("127.0.0.1", "127.0.0.1", "lo", peer_is_local=True, peer_named_local=True)
    own = _plan(dataclasses.replace(C10D_TWO_NODES, rdzv_endpoint="127.0.0.1:29400"),
                facts=dataclasses.replace(FACTS, route=loopback))
    assert "is_host" not in own.rendezvous.conf  # elastic sees it: it serves, or joins a store served already


def test_one_node_has_no_network_plan_and_no_route_is_asked():
    assert rendezvous_host(JobConfig(world=WorldSettings(nprocs=2))) is None
    assert _plan(WorldSettings(nprocs=2), facts=dataclasses.replace(FACTS, route=OTHER_NODE)).network is None
    assert rendezvous_host(JobConfig(world=C10D_TWO_NODES)) == "10.0.0.1"
    assert rendezvous_host(JobConfig(world=WorldSettings(nnodes="2", master_addr="m0"))) == "m0"


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
    plan = _plan(WorldSettings(nprocs=2, rdzv_id="exp/1"), logs=LogSettings(dir="/runs/a", redirects="0:3,1:0",
                                                                             tee="1:2"))
    run = "/runs/a/<YYYYmmdd-HHMMSS>-exp_1"  # each run in a new folder, named when it starts
    assert plan.ranks[0].stdout == f"{run}/attempt_0/0/stdout.log"
    assert plan.ranks[1].stderr == f"{run}/attempt_0/1/stderr.log"
    assert plan.ranks[1].error_file == f"{run}/attempt_0/1/error.json"
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


def test_dry_run_shows_the_common_environment_once_and_a_row_per_rank():
    plan = _plan(WorldSettings(nprocs=16), logs=LogSettings(dir="/logs"))
    lines = render_plan(plan).splitlines()
    start = lines.index("  every rank    stdout /logs/<YYYYmmdd-HHMMSS>-run123/attempt_0/<local rank>/stdout.log, "
                        "stderr /logs/<YYYYmmdd-HHMMSS>-run123/attempt_0/<local rank>/stderr.log; environment:")
    table = lines.index("  per rank              LOCAL_RANK  RANK  ROLE_RANK")  # under "rank 15 (local 15)"
    common = lines[start + 1:table]
    assert "    WORLD_SIZE=16" in common and len(common) == len(plan.ranks[0].env) - 3
    assert "    TORCHELASTIC_ERROR_FILE=/logs/<YYYYmmdd-HHMMSS>-run123/attempt_0/<local rank>/error.json" in common
    assert [line.split() for line in lines[table + 1:]] == [["rank", f"{r}", "(local", f"{r})", f"{r}", f"{r}", f"{r}"]
                                                          for r in range(16)]
    columns = [lines[table].index(name) + 1 for name in (" LOCAL_RANK", " RANK ", " ROLE_RANK")]
    assert all([row[c:].split()[0] for c in columns] == [f"{r}"] * 3 for r, row in enumerate(lines[table + 1:]))


def test_dry_run_lists_a_variable_that_only_some_ranks_have_in_the_table():
    plan = _plan(WorldSettings(nprocs=2))
    ranks = (plan.ranks[0], dataclasses.replace(plan.ranks[1], env={**plan.ranks[1].env, "EXTRA": "1"}))
    lines = render_plan(dataclasses.replace(plan, ranks=ranks)).splitlines()
    assert lines[-3:] == ["  per rank            EXTRA  LOCAL_RANK  RANK  ROLE_RANK",
                          "    rank 0 (local 0)  -      0           0     0",
                          "    rank 1 (local 1)  1      1           1     1"]


def test_a_preset_placeholder_host_stops_the_launch_and_the_plan_says_it_does_not_resolve():
    from launcher.cli.flags import parse_flags
    from launcher.config.job import load_job
    from launcher.network import Resolution
    from launcher.preflight.findings import preflight_error

    job = load_job(parse_flags(["--cluster", "two-node", "--nprocs", "2", "t.py"], {}).job)
    facts = dataclasses.replace(FACTS, rendezvous=Resolution("node0", (), "Name or service not known"))
    plan = build_plan(job.config, job.target, job.args, detect({}), facts)
    assert "  note          the rendezvous host node0 does not resolve on this host (Name or service not known)" in \
        render_plan(plan).splitlines()
    error = preflight_error(run_static_checks(static_inputs(plan, facts, frozenset({"target"}), job.origins)))
    assert error is not None and error.message.startswith("rendezvous: ")
    assert "two-node.yaml:10: world.rdzv_endpoint: node0 does not resolve" in error.message
    assert error.hint.startswith("node0 is a placeholder in the shipped two-node preset")
    skipped = run_static_checks(static_inputs(plan, facts, frozenset({"target", "rendezvous"}), job.origins))
    assert preflight_error(skipped) is None  # --skip-check rendezvous: the dry run prints the plan with its note


@pytest.mark.parametrize(("text", "expected"), [
    ("train.py", ScriptTarget("/work/train.py", "train.py")),
    ("-m pkg.train", ModuleTarget("pkg.train")),
    ("pkg.train:main", FunctionTarget("main", module="pkg.train")),
    ("sub/train.py:main", FunctionTarget("main", path="/work/sub/train.py")),
    ("C:train.py", ScriptTarget("/work/C:train.py", "C:train.py")),
])
def test_target_forms(text, expected):
    assert parse_target(text, base=Path("/work")) == expected



@pytest.mark.parametrize(("world", "logs", "error", "fragment"), [
    (WorldSettings(), LogSettings(local_ranks_filter="a"), ConfigError, "local_ranks_filter: expected local ranks"),
    (WorldSettings(nprocs=2), LogSettings(local_ranks_filter="0,2"), ConfigError, "local rank 2 does not exist"),
    (WorldSettings(), LogSettings(redirects="7"), ConfigError, "logs.redirects: expected 0-3"),
    (WorldSettings(), LogSettings(tee="0:3,1:9"), ConfigError, "logs.tee: expected 0-3"),
    (WorldSettings(signals_to_handle="SIGTERM,SIGFOO"), LogSettings(), PlatformError, "unknown signal 'SIGFOO'"),
    (WorldSettings(rdzv_conf={"timeout": "soon"}), LogSettings(), ConfigError, "timeout=soon: expected a whole"),
    (WorldSettings(nnodes="1:2", rdzv_backend="c10d", rdzv_endpoint="h:x"), LogSettings(), ConfigError,
     "'x' is not a TCP port"),
    (WorldSettings(nnodes="1:2", rdzv_backend="c10d", rdzv_endpoint="h:0", rdzv_conf={"is_host": "maybe"}),
     LogSettings(), ConfigError, "is_host=maybe: expected true or false"),
])
def test_what_the_supervisor_uses_is_parsed_by_the_plan(world, logs, error, fragment):
    """A value the supervisor cannot use is rejected when the plan is built: --dry-run rejects it too."""
    with pytest.raises(error, match=re.escape(fragment)):
        _plan(world, logs=logs)


def test_the_plan_holds_parsed_output_stop_and_hang_policies():
    plan = _plan(WorldSettings(nprocs=3, signals_to_handle="term,SIGHUP", shutdown_timeout=1.5),
                 logs=LogSettings(local_ranks_filter="0,2"), monitor=MonitorSettings(hang_timeout=4))
    assert plan.output.console_ranks == {0, 2} and plan.output.prefixed
    assert plan.stop == StopPlan(("SIGTERM", "SIGHUP"), 1.5, "SIGUSR1", requeue_under_slurm=True)
    assert plan.ranks[0].env["TORCHELASTIC_SIGNALS_TO_HANDLE"] == "SIGTERM,SIGHUP"
    assert plan.hang == HangPlan(4.0, 20.0)  # start-up: 5 x the timeout unless set
    win32 = dataclasses.replace(FACTS, platform="win32")
    windows = _plan(WorldSettings(signals_to_handle="SIGTERM,SIGHUP"), facts=win32)
    assert windows.stop.signals == ("SIGTERM",)  # no SIGHUP on Windows: dropped, as elastic does
    assert windows.stop.save_signal is None
    assert "checkpoint.stop_signal: SIGUSR1 does not exist here: no save and stop" in windows.notes


def test_the_save_and_stop_signal_is_never_one_that_stops_the_job():
    assert _plan(checkpoint=CheckpointSettings(stop_signal="SIGUSR2")).stop.save_signal == "SIGUSR2"
    assert _plan(checkpoint=CheckpointSettings(stop_signal=None)).stop.save_signal is None
    with pytest.raises(ConfigError, match=r"checkpoint\.stop_signal: SIGUSR1 is also in world\.signals_to_handle"):
        _plan(WorldSettings(signals_to_handle="SIGTERM,SIGUSR1"))


TEMPLATE = "TORCHELASTIC_LOG_LINE_PREFIX_TEMPLATE"


@pytest.mark.parametrize(("environ", "nprocs", "template", "prefixed"), [
    ({}, 1, None, False),  # one rank: bytes pass through
    ({}, 2, None, True),  # [rankN]:
    ({TEMPLATE: ""}, 2, None, True),  # empty: unset, as torchrun reads it
    ({TEMPLATE: "[${rank}] "}, 1, "[${rank}] ", True),  # with one rank too, as torchrun's tee does
])
def test_the_console_prefix_template_comes_from_the_environment(environ, nprocs, template, prefixed):
    plan = _plan(WorldSettings(nprocs=nprocs), facts=dataclasses.replace(FACTS, environ=environ))
    assert plan.output.prefix_template == template and plan.output.prefixed == prefixed
    assert ("TORCHELASTIC_LOG_LINE_PREFIX_TEMPLATE" in render_plan(plan)) == (template is not None)


def test_the_prefix_template_is_substituted_as_torchrun_does():
    environ = {TEMPLATE: "[${role_name}:$local_rank/${rank} ${other} $$ $] "}
    plan = _plan(WorldSettings(nprocs=2, role="trainer"), facts=dataclasses.replace(FACTS, environ=environ))
    # string.Template.safe_substitute: an unknown ${other} or a lone $ stays as written, $$ is one $.
    assert plan.output.template_prefix(1, 5) == "[trainer:1/5 ${other} $ $] "
    assert _plan().output.template_prefix(1, 5) is None


@pytest.mark.parametrize(("nprocs", "backend", "gpus_status"), [(2, "gloo", "warn"), (1, "nccl", "warn")])
def test_plan_and_preflight_read_cuda_visible_devices_alike(nprocs, backend, gpus_status):
    """CUDA_VISIBLE_DEVICES=0,5 on a 2-GPU host: CUDA stops at 5, so one GPU, for the plan and the preflight."""
    facts = dataclasses.replace(FACTS, installed_gpus=2, environ={"CUDA_VISIBLE_DEVICES": "0,5"})
    plan = _plan(WorldSettings(nprocs=nprocs), facts=facts)
    assert plan.gpus.devices == ("0",) and plan.backend == backend
    (gpus,) = [f for f in run_static_checks(static_inputs(plan, facts)) if f.check == "gpus"]
    assert gpus.status == gpus_status and "GPU 5 does not exist here" in gpus.message
    assert _plan(WorldSettings(nprocs="gpu"), facts=facts).nprocs == 1


def test_the_jobs_cuda_visible_devices_wins_over_the_launchers():
    facts = dataclasses.replace(FACTS, installed_gpus=4, environ={"CUDA_VISIBLE_DEVICES": "0,1,2,3"})
    plan = _plan(WorldSettings(nprocs="gpu"), facts=facts, env={"CUDA_VISIBLE_DEVICES": "2,3"})
    assert plan.gpus.devices == ("2", "3") and plan.nprocs == 2 and plan.backend == "nccl"


@pytest.mark.parametrize(("job", "expected"), [
    ({}, None),
    ({"logs": LogSettings(dir="/logs")}, "/logs"),
    ({"checkpoint": CheckpointSettings(dir="/ck")}, "/work/runs"),
    ({"monitor": MonitorSettings(metrics=True)}, "/work/runs"),
    ({"monitor": MonitorSettings(metrics=True, enabled=False)}, None),
    ({"logs": LogSettings(dir="/logs"), "checkpoint": CheckpointSettings(dir="/ck")}, "/logs"),
])
def test_a_run_folder_when_the_job_keeps_logs_checkpoints_or_metrics(job, expected):
    plan = _plan(**job)
    assert plan.log_dir == expected and plan.output.write_files == (expected is not None)
    if expected is not None:
        assert f"  logs          {expected}/" in render_plan(plan)
