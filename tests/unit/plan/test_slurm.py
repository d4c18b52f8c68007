"""Plans under SLURM: one launcher per node, one task per rank, one host; what each rank sees; the dry-run text."""

from __future__ import annotations

import dataclasses

import pytest

from launcher.clusters import detect
from launcher.errors import ConfigError
from launcher.hostinfo import HostFacts
from launcher.plan.build import build_plan
from launcher.plan.model import CHOSEN_AT_LAUNCH
from launcher.plan.render import render_plan
from launcher.schema import JobConfig, WorldSettings
from launcher.targets import ScriptTarget
from tests.unit.clusters.environs import dump, step

pytestmark = pytest.mark.timeout(30)
FACTS = HostFacts(usable_cpus=8, installed_gpus=0, platform="linux", environ={}, hostname="node1",
                  run_id="run123", cwd="/work")
CONTRACT = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE", "ROLE_RANK",
            "ROLE_WORLD_SIZE", "ROLE_NAME", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID",
            "TORCHELASTIC_RESTART_COUNT", "TORCHELASTIC_MAX_RESTARTS", "TORCHELASTIC_USE_AGENT_STORE")


def _plan(environ: dict[str, str], world: WorldSettings | None = None):  # type: ignore[no-untyped-def]
    facts = dataclasses.replace(FACTS, environ=environ)
    return build_plan(JobConfig(world=world or WorldSettings()), ScriptTarget("/work/train.py", "train.py"), (),
                      detect(environ), facts)


def _task(proc_id: int, node_id: int, local_id: int, **changes: str) -> dict[str, str]:
    """A task of the captured 2 nodes x 2 tasks step (job 1)."""
    return dump("step_2x2_task3", SLURM_PROCID=str(proc_id), SLURM_NODEID=str(node_id), SLURM_LOCALID=str(local_id),
                **changes)


@pytest.mark.parametrize(("proc_id", "node_id", "local_id"), [(0, 0, 0), (1, 0, 1), (2, 1, 0), (3, 1, 1)])
def test_one_task_per_rank_gives_each_rank_the_whole_contract(proc_id, node_id, local_id):
    plan = _plan(_task(proc_id, node_id, local_id))
    assert plan.slurm is not None and plan.slurm.mode == "per-task" and plan.nprocs == 1
    (rank,) = plan.ranks
    assert {key: rank.env[key] for key in CONTRACT} == {
        "RANK": str(proc_id), "LOCAL_RANK": str(local_id), "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2",
        "GROUP_RANK": str(node_id), "GROUP_WORLD_SIZE": "2", "ROLE_RANK": str(proc_id), "ROLE_WORLD_SIZE": "4",
        "ROLE_NAME": "default", "MASTER_ADDR": "node1", "MASTER_PORT": "12001", "TORCHELASTIC_RUN_ID": "1",
        "TORCHELASTIC_RESTART_COUNT": "0", "TORCHELASTIC_MAX_RESTARTS": "0", "TORCHELASTIC_USE_AGENT_STORE": "True"}
    rdzv = plan.rendezvous
    assert (rdzv.backend, rdzv.host, rdzv.port, rdzv.max_nodes, rdzv.node_rank) == ("static", "node1", 12001, 4,
                                                                                    proc_id)
    assert rdzv.listen_all  # task 0 serves the store to the other node, whatever node1 resolves to there
    assert plan.omp_num_threads == "4"  # 8 usable CPUs / 2 tasks on the node


def test_one_task_per_rank_with_uneven_tasks_per_node():
    plan = _plan(dump("step_3_2_task4"))
    env = plan.ranks[0].env
    assert (env["RANK"], env["LOCAL_RANK"], env["WORLD_SIZE"], env["LOCAL_WORLD_SIZE"], env["GROUP_RANK"]) == (
        "4", "1", "5", "2", "1")


def test_one_task_per_rank_takes_the_user_master_address():
    """Node names that do not resolve (fake nodes on one host): MASTER_ADDR in the environment wins."""
    plan = _plan(_task(2, 1, 0, MASTER_ADDR="127.0.0.1"))
    assert plan.rendezvous.host == "127.0.0.1" and plan.ranks[0].env["MASTER_ADDR"] == "127.0.0.1"
    assert "master_addr = 127.0.0.1 (MASTER_ADDR=127.0.0.1, set in the environment" in render_plan(plan)


def _node(node_id: int, **changes: str) -> dict[str, str]:
    """A task of a 2-node step with one task per node (job 4242)."""
    return {**step("node[001-002]", "1(x2)", 2, node_id=node_id, proc_id=node_id, local_id=0), **changes}


@pytest.mark.parametrize("node_id", [0, 1])
def test_one_launcher_per_node(node_id):
    plan = _plan(_node(node_id), WorldSettings(nprocs=2))
    assert plan.slurm is not None and plan.slurm.mode == "per-node" and plan.nprocs == 2
    rdzv = plan.rendezvous
    port = 12000 + 4242
    assert (rdzv.backend, rdzv.host, rdzv.port, rdzv.max_nodes, rdzv.node_rank) == ("static", "node001", port, 2,
                                                                                    node_id)
    assert rdzv.run_id == "4242" and rdzv.listen_all  # both launchers agree without being told; node 0 serves node 1
    for local_rank, rank in enumerate(plan.ranks):
        rank_id = str(node_id * 2 + local_rank)  # ranks follow SLURM's node order
        assert {key: rank.env[key] for key in CONTRACT} == {
            "RANK": rank_id, "LOCAL_RANK": str(local_rank), "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2",
            "GROUP_RANK": str(node_id), "GROUP_WORLD_SIZE": "2", "ROLE_RANK": rank_id, "ROLE_WORLD_SIZE": "4",
            "ROLE_NAME": "default", "MASTER_ADDR": "node001", "MASTER_PORT": str(port),
            "TORCHELASTIC_RUN_ID": "4242", "TORCHELASTIC_RESTART_COUNT": "0", "TORCHELASTIC_MAX_RESTARTS": "0",
            "TORCHELASTIC_USE_AGENT_STORE": "True"}


@pytest.mark.parametrize("node_id", [0, 1])
def test_one_launcher_per_node_over_c10d(node_id):
    plan = _plan(_node(node_id), WorldSettings(nprocs=2, rdzv_backend="c10d"))
    rdzv = plan.rendezvous
    assert (rdzv.backend, rdzv.host, rdzv.port, rdzv.min_nodes, rdzv.max_nodes) == ("c10d", "node001", 16242, 2, 2)
    assert rdzv.run_id == "4242" and rdzv.conf["is_host"] == ("true" if node_id == 0 else "false")
    env = plan.ranks[1].env
    assert (env["LOCAL_RANK"], env["LOCAL_WORLD_SIZE"], env["TORCHELASTIC_RUN_ID"]) == ("1", "2", "4242")
    assert env["RANK"] == env["WORLD_SIZE"] == env["GROUP_RANK"] == CHOSEN_AT_LAUNCH  # c10d assigns them


def test_c10d_with_another_master_lets_c10d_find_its_host():
    plan = _plan(_node(1, MASTER_ADDR="10.0.0.7"), WorldSettings(nprocs=2, rdzv_backend="c10d"))
    assert plan.rendezvous.host == "10.0.0.7" and "is_host" not in plan.rendezvous.conf


def test_c10d_with_one_task_per_rank_is_an_error():
    with pytest.raises(ConfigError, match=r"world\.rdzv_backend: c10d would assign the ranks"):
        _plan(_task(0, 0, 0), WorldSettings(rdzv_backend="c10d"))


def test_given_flags_win_and_the_plan_says_so():
    plan = _plan(_node(1), WorldSettings(nprocs=2, master_port=29400, rdzv_id="exp7"))
    assert plan.rendezvous.port == 29400 and plan.rendezvous.run_id == "exp7"
    assert any("--master-port 29400 wins over 16242 (12000 + SLURM_JOB_ID=4242 % 20000)" in n for n in plan.notes)
    topology = _plan(_node(1), WorldSettings(nprocs=2, nnodes="3", rdzv_backend="c10d",
                                              rdzv_endpoint="head:29400"))
    assert topology.slurm is not None and topology.slurm.mode == "as-given"
    assert (topology.rendezvous.host, topology.rendezvous.max_nodes) == ("head", 3)
    assert "--nnodes, --rdzv-endpoint given" in topology.slurm.reason


def test_nprocs_with_several_tasks_on_a_node_is_an_error():
    with pytest.raises(ConfigError, match=r"world.nprocs: 2 processes per launcher, but SLURM started 4 tasks .*"
                                          r"srun --ntasks-per-node=1.*--nprocs 1 \(the default\)"):
        _plan(_task(0, 0, 0), WorldSettings(nprocs=2))


@pytest.mark.parametrize("name", ["batch_2x2", "salloc_2x2"])
def test_outside_a_step_of_a_multi_node_job_is_an_error(name):
    with pytest.raises(ConfigError, match=r"SLURM job \d+ has 2 nodes, but this is .* srun --ntasks-per-node=1"):
        _plan(dump(name), WorldSettings(nprocs=2))


def test_one_node_runs_as_on_one_machine():
    batch = dump("batch_2x2", SLURM_JOB_NODELIST="node1", SLURM_NODELIST="node1", SLURM_JOB_NUM_NODES="1",
                 SLURM_NNODES="1", SLURM_TASKS_PER_NODE="1", SLURM_NTASKS="1")
    for environ in (batch, dump("pty"), dump("substep_1_of_2")):
        plan = _plan(environ, WorldSettings(nprocs=2))
        assert plan.slurm is not None and plan.slurm.mode == "one-host"
        assert plan.rendezvous.backend == "static" and plan.rendezvous.host == "127.0.0.1"
        assert [r.rank for r in plan.ranks] == [0, 1]
    salloc = dump("salloc_2x2", SLURM_JOB_NODELIST="node1", SLURM_NODELIST="node1", SLURM_JOB_NUM_NODES="1",
                  SLURM_NNODES="1", SLURM_TASKS_PER_NODE="1", SLURM_NTASKS="1")
    assert any("an salloc shell runs where salloc ran, not on node1" in n for n in _plan(salloc).notes)


def test_threads_follow_cpus_per_task_and_requeues_are_noted():
    plan = _plan(_node(0, SLURM_CPUS_PER_TASK="16", SLURM_RESTART_COUNT="1"), WorldSettings(nprocs=4))
    assert plan.omp_num_threads == "4"
    assert any("SLURM_RESTART_COUNT=1: this job was requeued 1 time(s)" in note for note in plan.notes)


def test_dry_run_shows_the_values_their_sources_and_the_mode():
    text = render_plan(_plan(step("node[001-004,010]", "2(x4),1", 9, node_id=1, proc_id=3, local_id=1)))
    assert "  cluster       slurm (job 4242, step 0, 5 node(s), 9 task(s))" in text
    assert "  slurm mode    per-task: 9 tasks on 5 node(s) (SLURM_STEP_TASKS_PER_NODE=2(x4),1) and no --nprocs" \
        in text
    assert "  slurm         master_addr = node001 (first of SLURM_STEP_NODELIST=node[001-004,010])" in text
    assert "  slurm         master_port = 16242 (12000 + SLURM_JOB_ID=4242 % 20000)" in text
    assert "  slurm         local task id = 1 (SLURM_LOCALID=1)" in text
    assert "  rendezvous    static at node001:16242, run id 4242" in text


def test_gpus_bound_per_task_are_noted():
    """srun --gpus-per-task=1: each task sees one GPU, but LOCAL_RANK (SLURM_LOCALID) is 0 or 1."""
    facts = dataclasses.replace(FACTS, installed_gpus=2, environ=_task(1, 0, 1, CUDA_VISIBLE_DEVICES="1"))
    plan = build_plan(JobConfig(), ScriptTarget("/work/train.py", "train.py"), (), detect(facts.environ), facts)
    assert any("this task sees 1 GPU(s) but LOCAL_RANK goes up to 1" in note for note in plan.notes)
    unbound = dataclasses.replace(facts, environ=_task(1, 0, 1))
    plan = build_plan(JobConfig(), ScriptTarget("/work/train.py", "train.py"), (), detect(unbound.environ), unbound)
    assert not any("this task sees" in note for note in plan.notes)


def test_dry_run_names_each_rank_by_the_local_rank_its_worker_sees():
    text = render_plan(_plan(_task(3, 1, 1)))
    assert "    rank 3 (local 1)" in text  # SLURM_LOCALID, not the index of the task's one process
