"""SLURM environments for tests: ``*.env`` are the SLURM variables of real processes (slurm-wlm 22.05, two
nodes; names and paths anonymised): a batch script, a task of an srun step (2x2, and 3+2 tasks), an salloc
shell, ``srun --pty``, and a one-node step inside a two-node job. ``step()`` writes one by hand."""

from __future__ import annotations

from pathlib import Path

import hostlist

ENVIRONS = Path(__file__).parent


def dump(name: str, **changes: str | None) -> dict[str, str]:
    """A captured environment, with variables changed (None: removed)."""
    environ = dict(line.split("=", 1) for line in (ENVIRONS / f"{name}.env").read_text().splitlines() if line)
    for key, value in changes.items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    return environ


def step(nodelist: str, tasks_per_node: str, ntasks: int, node_id: int, proc_id: int, local_id: int,
         **extra: str) -> dict[str, str]:
    """A task of an srun step as SLURM sets it (the variables the detector reads, and a few it does not)."""
    nnodes = str(len(hostlist.expand_hostlist(nodelist)))
    return {"SLURM_JOB_ID": "4242", "SLURM_JOBID": "4242", "SLURM_JOB_NODELIST": nodelist, "SLURM_NODELIST": nodelist,
            "SLURM_JOB_NUM_NODES": nnodes, "SLURM_NNODES": nnodes, "SLURM_STEP_ID": "0", "SLURM_STEPID": "0",
            "SLURM_STEP_NODELIST": nodelist, "SLURM_STEP_NUM_NODES": nnodes, "SLURM_STEP_NUM_TASKS": str(ntasks),
            "SLURM_STEP_TASKS_PER_NODE": tasks_per_node, "SLURM_TASKS_PER_NODE": tasks_per_node,
            "SLURM_NTASKS": str(ntasks), "SLURM_NPROCS": str(ntasks), "SLURM_NODEID": str(node_id),
            "SLURM_PROCID": str(proc_id), "SLURM_LOCALID": str(local_id), "SLURMD_NODENAME": "x",
            "SLURM_CLUSTER_NAME": "cluster", "SLURM_JOB_PARTITION": "gpu", "SLURM_TASK_PID": "4711", **extra}


