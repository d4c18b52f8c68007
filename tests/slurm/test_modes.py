"""A 2-node x 2-rank gloo job submitted with ``launcher sbatch --submit`` runs to completion in each mode, and
its ranks see torchrun's environment contract.

per_node: SLURM starts one launcher per node, which starts the node's two ranks (node rank from SLURM_NODEID).
per_task: SLURM starts every rank as a launcher, which runs in place as that rank. The script is a plain
``env://`` one. About 13 s (per_node) and 19-30 s (per_task) with pytest -n 2 on 2 cores at a load of 20.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from launcher.clusters.slurm import PORT_BASE, PORT_SPAN
from tests.slurm.jobs import output, submit

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
NODES, PER_NODE = 2, 2
WORLD = NODES * PER_NODE

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(150)]

JOBS = {
    "per_node": "world: {nprocs: 2}\nslurm: {mode: per_node}\n",
    "per_task": "slurm: {mode: per_task, ntasks_per_node: 2}\n",
}


@pytest.mark.parametrize("mode", sorted(JOBS))
def test_a_two_node_job_runs_and_its_ranks_see_the_env_contract(slurm, slurm_env, tmp_path, mode):
    job = tmp_path / "job.yaml"
    job.write_text(f"entrypoint: {SAMPLES / 'env_allreduce.py'}\n{JOBS[mode]}")
    job_id = submit(job, ["--nodes", NODES], slurm_env, job_args=[tmp_path / "ranks"])
    fields = slurm.wait_until_finished(job_id, timeout=120)
    assert (fields["JobState"], fields["ExitCode"]) == ("COMPLETED", "0:0"), output(tmp_path, job_id)

    written = sorted(path.name for path in (tmp_path / "ranks").glob("rank*.json"))
    assert written == [f"rank{rank}.json" for rank in range(WORLD)], output(tmp_path, job_id)
    seen = [json.loads((tmp_path / "ranks" / f"rank{rank}.json").read_text()) for rank in range(WORLD)]
    envs = [ranks["env"] for ranks in seen]
    assert [ranks["sum"] for ranks in seen] == [WORLD * (WORLD + 1) / 2] * WORLD  # the all_reduce met every rank
    for rank, env in enumerate(envs):
        group = int(env["GROUP_RANK"])  # the node's rank in the world
        contract = {name: env.get(name) for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE",
                                                     "GROUP_WORLD_SIZE", "ROLE_RANK", "ROLE_WORLD_SIZE",
                                                     "TORCHELASTIC_RESTART_COUNT")}
        assert contract == {"RANK": str(rank), "LOCAL_RANK": str(rank % PER_NODE), "WORLD_SIZE": str(WORLD),
                            "LOCAL_WORLD_SIZE": str(PER_NODE), "GROUP_WORLD_SIZE": str(NODES),
                            "ROLE_RANK": str(rank), "ROLE_WORLD_SIZE": str(WORLD),
                            "TORCHELASTIC_RESTART_COUNT": "0"}, env
        assert group == rank // PER_NODE, env
        if mode == "per_task":  # SLURM's task is the rank
            assert (env["SLURM_NTASKS"], env["SLURM_PROCID"], env["SLURM_LOCALID"]) == (str(WORLD), str(rank),
                                                                                         str(rank % PER_NODE))
        else:  # SLURM's task is the node's launcher, the ranks are its workers
            assert (env["SLURM_NTASKS"], env["SLURM_PROCID"]) == (str(NODES), env["SLURM_NODEID"])
    nodes = {int(env["GROUP_RANK"]): (env["SLURM_NODEID"], env["SLURMD_NODENAME"]) for env in envs}
    assert len(nodes) == NODES and len(set(nodes.values())) == NODES  # one node rank per SLURM node
    for name in ("MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID", "TORCHELASTIC_MAX_RESTARTS", "ROLE_NAME"):
        assert len({env.get(name) for env in envs}) == 1 and envs[0].get(name), (name, [e.get(name) for e in envs])
    # the first node of SLURM_JOB_NODELIST=127.0.0.[1-2], a port derived from the job id, the job id as run id
    assert (envs[0]["MASTER_ADDR"], envs[0]["MASTER_PORT"], envs[0]["TORCHELASTIC_RUN_ID"]) == (
        "127.0.0.1", str(PORT_BASE + int(job_id) % PORT_SPAN), job_id)
    assert envs[0]["SLURM_JOB_NODELIST"] == "127.0.0.[1-2]"
    tasks = {(env["SLURM_NODEID"], env["SLURM_TASK_PID"]) for env in envs}  # the SLURM tasks the ranks run in
    assert len(tasks) == (NODES if mode == "per_node" else WORLD)
    # node rank = SLURM_NODEID, node 0 = the first node of the list
    assert nodes == {group: (str(group), f"127.0.0.{group + 1}") for group in range(NODES)}
