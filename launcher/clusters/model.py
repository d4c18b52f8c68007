"""What cluster detection returns. Pure data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

# Where the launcher runs in a SLURM job: a batch script (on the job's first node), a step started by srun
# (``pty``: ``srun --pty``, an interactive step), or an salloc shell (on the host that ran salloc, outside
# the allocation's nodes).
SlurmContext = Literal["batch", "step", "pty", "salloc"]


@dataclass(frozen=True)
class SlurmJob:
    """What SLURM's variables say about this process's job and step; ``sources`` says where each value came from.

    In a step the node list, node and task counts are the step's (``SLURM_STEP_*``): a step may use fewer
    nodes than its job. ``node_id``, ``proc_id`` and ``local_id`` are None outside a step's tasks (salloc).
    """

    job_id: int
    context: SlurmContext
    nodes: tuple[str, ...]  # in SLURM's order: node i is SLURM_NODEID i
    tasks_per_node: tuple[int, ...]  # one entry per node
    ntasks: int
    node_id: int | None
    proc_id: int | None
    local_id: int | None
    master_addr: str  # the first node, unless MASTER_ADDR is set
    master_port: int  # derived from the job id, unless MASTER_PORT is set
    step_id: str | None = None
    gpus_per_node: str | None = None  # as written: "4" or "a100:4"
    gpus_on_node: int | None = None
    gpus_per_task: str | None = None
    cpus_per_task: int | None = None
    restart_count: int = 0
    sources: Mapping[str, str] = field(default_factory=dict)  # field name → where its value came from

    @property
    def nnodes(self) -> int:
        return len(self.nodes)

    @property
    def tasks_on_node(self) -> int | None:
        """Tasks of this step on this node (None outside a step's tasks)."""
        return self.tasks_per_node[self.node_id] if self.node_id is not None else None

    @property
    def in_step(self) -> bool:
        return self.context in ("step", "pty")


@dataclass(frozen=True)
class Cluster:
    kind: str  # "local" or "slurm"
    description: str
    slurm: SlurmJob | None = None  # what SLURM's variables say, on a SLURM cluster
