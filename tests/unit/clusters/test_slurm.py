"""SLURM detection from environments: real dumps and hand-written variants; what is read, from where, and errors."""

from __future__ import annotations

import pytest

from launcher.clusters import DETECTORS, detect
from launcher.clusters.local import detect_local
from launcher.clusters.slurm import PORT_BASE, PORT_SPAN, detect_slurm
from launcher.errors import EXIT_USAGE, ConfigError
from tests.unit.clusters.environs import dump, step

pytestmark = pytest.mark.timeout(30)
def test_slurm_comes_before_local():
    assert (detect_slurm, detect_local) == DETECTORS
    assert detect({}).kind == "local" and detect({"PATH": "/usr/bin"}).slurm is None


def test_batch_script_of_a_two_node_job():
    job = detect(dump("batch_2x2")).slurm
    assert job is not None and job.context == "batch" and job.step_id is None
    assert job.nodes == ("node1", "node2") and job.tasks_per_node == (2, 2) and job.ntasks == 4
    assert (job.node_id, job.proc_id, job.local_id) == (0, 0, 0)
    assert job.master_addr == "node1" and job.sources["master_addr"] == "first of SLURM_JOB_NODELIST=node[1-2]"
    assert job.master_port == PORT_BASE + 1


def test_task_of_an_srun_step():
    cluster = detect(dump("step_2x2_task3"))
    job = cluster.slurm
    assert cluster.kind == "slurm" and cluster.description == "job 1, step 0, 2 node(s), 4 task(s)"
    assert job is not None and job.context == "step" and job.in_step
    assert (job.node_id, job.proc_id, job.local_id, job.tasks_on_node) == (1, 3, 1, 2)
    assert job.sources["nodes"] == "SLURM_STEP_NODELIST=node[1-2]"
    assert job.sources["tasks_per_node"] == "SLURM_STEP_TASKS_PER_NODE=2(x2)"
    assert job.sources["proc_id"] == "SLURM_PROCID=3"


def test_heterogeneous_tasks_per_node():
    job = detect(dump("step_3_2_task4")).slurm
    assert job is not None and job.tasks_per_node == (3, 2) and job.ntasks == 5
    assert (job.node_id, job.proc_id, job.local_id, job.tasks_on_node) == (1, 4, 1, 2)


def test_a_step_on_fewer_nodes_than_its_job_reads_the_step():
    """SLURM_NODELIST and SLURM_NTASKS_PER_NODE are still the job's (node[1-2], 2) in a one-node step."""
    environ = dump("substep_1_of_2")
    assert environ["SLURM_NODELIST"] == "node[1-2]" and environ["SLURM_NTASKS_PER_NODE"] == "2"
    job = detect(environ).slurm
    assert job is not None and job.step_id == "1" and job.nodes == ("node1",)
    assert job.tasks_per_node == (1,) and job.ntasks == 1


def test_salloc_shell():
    cluster = detect(dump("salloc_2x2"))
    job = cluster.slurm
    assert job is not None and job.context == "salloc" and "salloc shell" in cluster.description
    assert (job.node_id, job.proc_id, job.local_id, job.tasks_on_node) == (None, None, None, None)
    assert job.nodes == ("node1", "node2") and job.ntasks == 4


def test_srun_pty():
    cluster = detect(dump("pty"))
    assert cluster.slurm is not None and cluster.slurm.context == "pty" and cluster.slurm.in_step
    assert "srun --pty" in cluster.description


@pytest.mark.parametrize(("nodelist", "expected"), [
    ("node[001-004,010]", ("node001", "node002", "node003", "node004", "node010")),
    ("gpu-a[1-2],gpu-b7", ("gpu-a1", "gpu-a2", "gpu-b7")),
    ("rack[1-2]-n[08-09]", ("rack1-n08", "rack1-n09", "rack2-n08", "rack2-n09")),
    ("dgx017", ("dgx017",)),
])
def test_node_lists(nodelist, expected):
    tasks = f"1(x{len(expected)})"
    job = detect(step(nodelist, tasks, len(expected), 0, 0, 0)).slurm
    assert job is not None and job.nodes == expected and job.master_addr == expected[0]


def test_multi_range_list_with_tasks_two_x_four_then_one():
    job = detect(step("node[001-004,010]", "2(x4),1", 9, node_id=4, proc_id=8, local_id=0)).slurm
    assert job is not None and job.tasks_per_node == (2, 2, 2, 2, 1) and job.tasks_on_node == 1
    assert job.sources["master_addr"] == "first of SLURM_STEP_NODELIST=node[001-004,010]"


def test_mixed_node_names_with_two_x_two_then_one():
    job = detect(step("gpu-a[1-2],gpu-b7", "2(x2),1", 5, node_id=2, proc_id=4, local_id=0)).slurm
    assert job is not None and job.nodes[job.node_id or 0] == "gpu-b7" and job.tasks_per_node == (2, 2, 1)


def test_gpu_job_resources_and_requeue_count():
    environ = step("dgx[017-018]", "1(x2)", 2, 1, 1, 0, SLURM_GPUS_PER_NODE="a100:4", SLURM_GPUS_ON_NODE="4",
                   SLURM_GPUS_PER_TASK="4", SLURM_CPUS_PER_TASK="32", SLURM_RESTART_COUNT="2",
                   SLURM_JOB_GPUS="0,1,2,3", CUDA_VISIBLE_DEVICES="0,1,2,3")
    job = detect(environ).slurm
    assert job is not None
    assert (job.gpus_per_node, job.gpus_on_node, job.gpus_per_task) == ("a100:4", 4, "4")
    assert job.cpus_per_task == 32 and job.restart_count == 2
    assert job.sources["cpus_per_task"] == "SLURM_CPUS_PER_TASK=32"


def test_master_address_and_port_set_by_the_user_win():
    job = detect(dump("step_2x2_task3", MASTER_ADDR="10.1.2.3", MASTER_PORT="29555")).slurm
    assert job is not None and (job.master_addr, job.master_port) == ("10.1.2.3", 29555)
    assert job.sources["master_addr"].startswith("MASTER_ADDR=10.1.2.3")
    assert job.sources["master_port"].startswith("MASTER_PORT=29555")


def test_port_follows_the_job_id():
    ports = {detect(dump("step_2x2_task3", SLURM_JOB_ID=str(job_id))).slurm.master_port  # type: ignore[union-attr]
             for job_id in range(123450, 123460)}
    assert len(ports) == 10 and all(PORT_BASE <= port < PORT_BASE + PORT_SPAN < 32768 for port in ports)
    assert detect(dump("step_2x2_task3", SLURM_JOB_ID="123456")).slurm.master_port == 15456  # type: ignore[union-attr]


def test_old_alias_of_the_job_id_is_enough():
    environ = dump("batch_2x2", SLURM_JOB_ID=None)
    assert detect(environ).kind == "slurm"


def test_a_torchrun_worker_under_slurm_is_not_slurm():
    """torchrun's (or this launcher's) worker inherits SLURM's variables: its world is its launcher's."""
    environ = dump("step_2x2_task3", TORCHELASTIC_RUN_ID="4242", RANK="5", LOCAL_RANK="1", WORLD_SIZE="8",
                   GROUP_RANK="2", MASTER_ADDR="node1", MASTER_PORT="29500", TORCHELASTIC_RESTART_COUNT="0")
    assert detect(environ).kind == "local"


@pytest.mark.parametrize(("changes", "fragments"), [
    ({"SLURM_STEP_NODELIST": None, "SLURM_NODELIST": None, "SLURM_JOB_NODELIST": None},
     ["SLURM_STEP_NODELIST/SLURM_NODELIST/SLURM_JOB_NODELIST is not set", "SLURM_JOB_ID=1"]),
    ({"SLURM_PROCID": None}, ["SLURM_PROCID is not set"]),
    ({"SLURM_LOCALID": "one"}, ["SLURM_LOCALID=one: expected a whole number"]),
    ({"SLURM_STEP_NODELIST": "node[1-"}, ["SLURM_STEP_NODELIST=node[1-: not a SLURM node list"]),
    ({"SLURM_STEP_NUM_NODES": "3"}, ["SLURM_STEP_NUM_NODES=3 but SLURM_STEP_NODELIST=node[1-2] names 2 node(s)"]),
    ({"SLURM_STEP_TASKS_PER_NODE": "2(x)"}, ["SLURM_STEP_TASKS_PER_NODE=2(x): expected counts such as"]),
    ({"SLURM_STEP_TASKS_PER_NODE": "2(x3)"}, ["SLURM_STEP_TASKS_PER_NODE=2(x3) gives 3 node(s)",
                                              "SLURM_STEP_NUM_NODES=2"]),
    ({"SLURM_STEP_NUM_TASKS": "5"}, ["SLURM_STEP_NUM_TASKS=5 but SLURM_STEP_TASKS_PER_NODE=2(x2) adds up to 4"]),
    ({"SLURM_NODEID": "2"}, ["SLURM_NODEID=2 but SLURM_STEP_NUM_NODES=2"]),
    ({"SLURM_PROCID": "4"}, ["SLURM_PROCID=4 but SLURM_STEP_NUM_TASKS=4"]),
    ({"SLURM_LOCALID": "2"}, ["SLURM_LOCALID=2 but 2 task(s) on node 1"]),
    ({"SLURM_STEP_TASKS_PER_NODE": None, "SLURM_TASKS_PER_NODE": None},
     ["SLURM_STEP_TASKS_PER_NODE/SLURM_TASKS_PER_NODE is not set", "SLURM_STEP_NUM_TASKS=4 on 2 node(s)"]),
    ({"MASTER_PORT": "http"}, ["MASTER_PORT=http: expected a whole number 1..65535", "fix or unset MASTER_PORT"]),
    ({"MASTER_PORT": "70000"}, ["MASTER_PORT=70000"]),
    ({"SLURM_JOB_ID": "abc"}, ["SLURM_JOB_ID=abc: expected a whole number"]),
])
def test_missing_or_inconsistent_variables_name_the_variable(changes, fragments):
    with pytest.raises(ConfigError) as raised:
        detect(dump("step_2x2_task3", **changes))
    assert raised.value.exit_code == EXIT_USAGE
    for fragment in fragments:
        assert fragment in str(raised.value)


def test_one_task_per_node_needs_no_tasks_per_node_list():
    environ = step("node[1-3]", "1(x3)", 3, 2, 2, 0)
    del environ["SLURM_STEP_TASKS_PER_NODE"], environ["SLURM_TASKS_PER_NODE"]
    job = detect(environ).slurm
    assert job is not None and job.tasks_per_node == (1, 1, 1)
