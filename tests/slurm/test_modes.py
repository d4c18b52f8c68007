"""A 2-node x 2-rank gloo job submitted with ``launcher sbatch --submit`` runs to completion in each mode, and
its ranks see torchrun's environment contract.

per_node: SLURM starts one launcher per node, which starts the node's two ranks (c10d rendezvous at the first
node, node rank from SLURM_NODEID). per_task: SLURM starts every rank as a launcher, which runs in place as
that rank. The script is a plain ``env://`` one. Where per_node's node ranks are not SLURM_NODEID (elastic's
c10d rendezvous orders the nodes its own way) the test ends as an expected failure naming the gap, once the
rest of the contract has been checked. About 15 s (per_node) and 21 s (per_task) on 2 busy cores.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

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
    if mode == "per_task":  # the first node of SLURM_JOB_NODELIST=127.0.0.[1-2]
        assert envs[0]["MASTER_ADDR"] == "127.0.0.1"
    else:  # elastic's agent store: what node 0's launcher publishes, its host name (as under torchrun)
        assert envs[0]["MASTER_ADDR"] in ("127.0.0.1", socket.getfqdn())
    assert envs[0]["SLURM_JOB_NODELIST"] == "127.0.0.[1-2]"
    tasks = {(env["SLURM_NODEID"], env["SLURM_TASK_PID"]) for env in envs}  # the SLURM tasks the ranks run in
    assert len(tasks) == (NODES if mode == "per_node" else WORLD)
    by_slurm = {group: (str(group), f"127.0.0.{group + 1}") for group in range(NODES)}
    if mode == "per_node" and nodes != by_slurm:
        pytest.xfail(f"node rank is not SLURM_NODEID ({nodes}): elastic's c10d rendezvous orders the nodes by "
                     "(host name, pid) of their launchers, not by SLURM_NODEID")
    assert nodes == by_slurm  # node rank = SLURM_NODEID, node 0 = the first node of the list
