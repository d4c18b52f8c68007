"""What a launch takes from SLURM: the world settings a step implies, the mode, and the rank variables. Pure.

Two ways to run in a step (``srun``), chosen the same way on every task:
- one launcher per node (one task per node: ``srun --ntasks-per-node=1 python -m launcher --nprocs N``):
  ``nnodes`` is the step's node count, the node rank SLURM_NODEID, and the launchers meet at the first
  node's address and the job's port, with the job id as run id. The rendezvous is static, so ranks follow
  the node list (GROUP_RANK = SLURM_NODEID, RANK = SLURM_NODEID x nprocs + LOCAL_RANK) and the dry-run
  shows them; node 0's launcher serves the store on every interface. ``--rdzv-backend c10d`` asks for
  elastic's c10d rendezvous there instead (node 0's launcher hosts it), which assigns group ranks in the
  order of its own sort of host names and pids, not SLURM's (seen: SLURM_NODEID 1 got group rank 0);
- one task per rank (several tasks on some node, no ``--nprocs``): each task is a rendezvous "node" of one
  process (a static rendezvous: rank SLURM_PROCID of SLURM_NTASKS, the store served by task 0 on the
  first node, on every interface), and its worker gets SLURM's LOCAL_RANK (SLURM_LOCALID),
  LOCAL_WORLD_SIZE (tasks on this node), GROUP_RANK (SLURM_NODEID) and GROUP_WORLD_SIZE (nodes).
One task on one node runs as on one machine. So does a batch script or an salloc shell of a one-node job:
with more nodes, only srun reaches them, which is an error here, not a silent use of one node.

A world setting left at its default takes SLURM's value. Rendezvous flags (``--nnodes``, ``--node-rank``,
``--rdzv-endpoint``, ``--standalone``, a backend other than static or c10d) replace SLURM's topology as a
whole; ``--master-addr``, ``--master-port`` and ``--rdzv-id`` replace one value. The plan says which.
Never imports torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from launcher.clusters.model import SlurmJob
from launcher.errors import ConfigError
from launcher.plan.model import SlurmPlan
from launcher.schema import WorldSettings

DEFAULTS = WorldSettings()
TOPOLOGY_FLAGS = {"nnodes": "--nnodes", "node_rank": "--node-rank", "rdzv_endpoint": "--rdzv-endpoint",
                  "standalone": "--standalone"}
SLURM_BACKENDS = ("static", "c10d")  # the rendezvous backends SLURM's topology can fill in
SRUN_FIX = ("start the launcher on every node with srun: srun --ntasks-per-node=1 python -m launcher --nprocs N ..., "
            "or srun --ntasks-per-node=N python -m launcher ... for one task per rank")


@dataclasses.dataclass(frozen=True)
class SlurmWorld:
    world: WorldSettings  # the settings the launch uses
    plan: SlurmPlan
    rank_env: Mapping[str, str]  # what the worker sees in place of elastic's values (one task per rank)


def plan_slurm(world: WorldSettings, job: SlurmJob) -> SlurmWorld:
    chosen = _choose(world, job)
    if not job.restart_count:
        return chosen
    requeued = f"{job.sources['restart_count']}: this job was requeued {job.restart_count} time(s)"
    plan = dataclasses.replace(chosen.plan, notes=(*chosen.plan.notes, requeued))
    return dataclasses.replace(chosen, plan=plan)


def _choose(world: WorldSettings, job: SlurmJob) -> SlurmWorld:
    given = [flag for key, flag in TOPOLOGY_FLAGS.items() if getattr(world, key) != getattr(DEFAULTS, key)]
    if world.rdzv_backend not in SLURM_BACKENDS:
        given.append(f"--rdzv-backend {world.rdzv_backend}")
    if given:
        reason = (f"{', '.join(given)} given: the rendezvous is as given, SLURM's topology "
                  f"({job.nnodes} node(s), {job.ntasks} task(s)) is not used")
        return SlurmWorld(world, SlurmPlan(job, "as-given", reason), {})
    if not job.in_step:
        return _outside_a_step(world, job)
    if job.nnodes == 1 and job.ntasks == 1:
        return SlurmWorld(world, SlurmPlan(job, "one-host", "one task on one node: as on one machine"), {})
    if job.ntasks == job.nnodes:
        return _per_node(world, job)
    if world.rdzv_backend != "static":
        raise ConfigError(f"world.rdzv_backend: {world.rdzv_backend} would assign the ranks, but one task per rank "
                          "takes each rank from SLURM_PROCID", "drop --rdzv-backend, or run one task per node "
                          "(srun --ntasks-per-node=1) with --nprocs")
    if world.nprocs != DEFAULTS.nprocs:
        raise ConfigError(f"world.nprocs: {world.nprocs} processes per launcher, but SLURM started {job.ntasks} "
                          f"tasks on {job.nnodes} node(s) ({job.sources['tasks_per_node']}): several launchers on "
                          "a node", "run one task per node (srun --ntasks-per-node=1) with --nprocs, or pass "
                          "--nprocs 1 (the default) to run one rank per task")
    return _per_task(world, job)


def _outside_a_step(world: WorldSettings, job: SlurmJob) -> SlurmWorld:
    where = "the batch script" if job.context == "batch" else "an salloc shell"
    if job.nnodes > 1:
        runs = "runs on the first node only" if job.context == "batch" else "runs outside the allocation's nodes"
        raise ConfigError(f"SLURM job {job.job_id} has {job.nnodes} nodes, but this is {where}, which {runs}",
                          SRUN_FIX)
    notes: tuple[str, ...] = ()
    if job.context == "salloc":
        notes = (f"an salloc shell runs where salloc ran, not on {job.nodes[0]}: srun python -m launcher ... runs "
                 "there",)
    return SlurmWorld(world, SlurmPlan(job, "one-host", f"{where} of a one-node job: as on one machine", notes), {})


def _address(world: WorldSettings, job: SlurmJob, notes: list[str]) -> tuple[str, int, str]:
    """The master address and port, and the run id: SLURM's, unless given."""
    addr, port, run_id = job.master_addr, job.master_port, str(job.job_id)
    if world.master_addr != DEFAULTS.master_addr:
        notes.append(f"--master-addr {world.master_addr} wins over {job.master_addr} "
                     f"({job.sources['master_addr']})")
        addr = world.master_addr
    if world.master_port is not None:
        notes.append(f"--master-port {world.master_port} wins over {job.master_port} "
                     f"({job.sources['master_port']})")
        port = world.master_port
    if world.rdzv_id != DEFAULTS.rdzv_id:
        notes.append(f"--rdzv-id {world.rdzv_id} wins over the job id {job.job_id}")
        run_id = world.rdzv_id
    return addr, port, run_id


def _per_node(world: WorldSettings, job: SlurmJob) -> SlurmWorld:
    notes: list[str] = []
    addr, port, run_id = _address(world, job, notes)
    node_rank = job.node_id or 0
    one_per_node = f"one task per node ({job.sources['tasks_per_node']}): one launcher per node"
    if world.rdzv_backend == "static":
        settings = dataclasses.replace(world, nnodes=str(job.nnodes), node_rank=node_rank, master_addr=addr,
                                       master_port=port, rdzv_id=run_id)
        reason = f"{one_per_node}, node rank SLURM_NODEID, a static rendezvous at {addr}:{port} served by node 0"
        return SlurmWorld(settings, SlurmPlan(job, "per-node", reason, tuple(notes)), {})
    conf = dict(world.rdzv_conf)
    if addr == job.nodes[0] and "is_host" not in conf:  # else c10d finds out whether the address is this host's
        conf["is_host"] = "true" if node_rank == 0 else "false"
    host = f"[{addr}]" if ":" in addr else addr
    settings = dataclasses.replace(world, nnodes=str(job.nnodes), node_rank=node_rank, rdzv_endpoint=f"{host}:{port}",
                                   rdzv_id=run_id, rdzv_conf=conf)
    reason = (f"{one_per_node}, a c10d rendezvous at {host}:{port} hosted by node 0's launcher (--rdzv-backend "
              "c10d: it assigns the group ranks)")
    return SlurmWorld(settings, SlurmPlan(job, "per-node", reason, tuple(notes)), {})


def _per_task(world: WorldSettings, job: SlurmJob) -> SlurmWorld:
    assert job.node_id is not None and job.proc_id is not None and job.local_id is not None  # set in every step
    notes: list[str] = []
    addr, port, run_id = _address(world, job, notes)
    settings = dataclasses.replace(world, nprocs=1, nnodes=str(job.ntasks), node_rank=job.proc_id,
                                   master_addr=addr, master_port=port, rdzv_id=run_id)
    rank_env = {"LOCAL_RANK": str(job.local_id), "LOCAL_WORLD_SIZE": str(job.tasks_on_node),
                "GROUP_RANK": str(job.node_id), "GROUP_WORLD_SIZE": str(job.nnodes)}
    reason = (f"{job.ntasks} tasks on {job.nnodes} node(s) ({job.sources['tasks_per_node']}) and no --nprocs: "
              f"this task runs rank {job.proc_id} (SLURM_PROCID) in place")
    return SlurmWorld(settings, SlurmPlan(job, "per-task", reason, tuple(notes)), rank_env)


def gpus_bound_per_task(plan: SlurmPlan, visible_gpus: int) -> str | None:
    """A note when one task per rank sees fewer GPUs than its node's tasks: cuda:LOCAL_RANK is not in every task."""
    tasks = plan.job.tasks_on_node or 1
    if plan.mode != "per-task" or not 0 < visible_gpus < tasks:
        return None
    return (f"this task sees {visible_gpus} GPU(s) but LOCAL_RANK goes up to {tasks - 1} (GPUs bound per task): "
            "cuda:LOCAL_RANK does not exist in every task; ask GPUs per node (--gpus-per-node), or use cuda:0")
