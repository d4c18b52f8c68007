"""The ``slurm`` cluster: what SLURM's variables say about this job and step. Pure: ``environ`` in, ``Cluster`` out.

Applies when ``SLURM_JOB_ID`` (or ``SLURM_JOBID``) is set, except in a worker started by torchrun or by
this launcher (``TORCHELASTIC_RUN_ID``): such a worker inherits its launcher's SLURM variables, but its
world is the launcher's, not SLURM's.

Where the process runs (``SlurmJob.context``):
- a step started by ``srun``: ``SLURM_STEP_ID`` is set (``pty``: with ``SLURM_PTY_PORT``, ``srun --pty``);
- a batch script: no step, but a task of the batch step (``SLURMD_NODENAME``, ``SLURM_TASK_PID``);
- an salloc shell: neither (it runs where salloc ran, outside the allocation's nodes).

In a step, the step's variables (``SLURM_STEP_NODELIST``...) come first: a step may run on fewer nodes
than its job, whose ``SLURM_NODELIST`` and ``SLURM_NTASKS_PER_NODE`` it still inherits. Node lists are
expanded by python-hostlist. A variable that is missing, unreadable or at odds with another is a
``ConfigError`` naming it, never a fallback to localhost.

MASTER_ADDR: the first node of the node list, unless ``MASTER_ADDR`` is set (it wins: e.g. node names
that do not resolve). MASTER_PORT: ``PORT_BASE + job id % PORT_SPAN`` (12000..31999: below Linux's
ephemeral ports, 32768 and up; jobs whose ids differ by less than 20000 never share one), unless
``MASTER_PORT`` is set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from launcher.clusters.model import Cluster, SlurmContext, SlurmJob
from launcher.errors import ConfigError

PORT_BASE = 12000
PORT_SPAN = 20000

# The variables read, each list in order of preference.
JOB_ID = ("SLURM_JOB_ID", "SLURM_JOBID")
STEP_ID = ("SLURM_STEP_ID", "SLURM_STEPID")
NODELIST = {"step": ("SLURM_STEP_NODELIST", "SLURM_NODELIST", "SLURM_JOB_NODELIST"),
            "job": ("SLURM_JOB_NODELIST", "SLURM_NODELIST")}
NUM_NODES = {"step": ("SLURM_STEP_NUM_NODES", "SLURM_NNODES"), "job": ("SLURM_JOB_NUM_NODES", "SLURM_NNODES")}
TASKS_PER_NODE = {"step": ("SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE"), "job": ("SLURM_TASKS_PER_NODE",)}
NUM_TASKS = {"step": ("SLURM_STEP_NUM_TASKS", "SLURM_NTASKS", "SLURM_NPROCS"), "job": ("SLURM_NTASKS", "SLURM_NPROCS")}
BATCH_MARKERS = ("SLURMD_NODENAME", "SLURM_TASK_PID")  # set in a batch script, not in an salloc shell
NOT_SLURM = "TORCHELASTIC_RUN_ID"  # a torchrun (or launcher) worker: its world is its launcher's

_FIX = "run the launcher inside an allocation (sbatch, salloc, srun), or unset the SLURM_* variables"


def detect_slurm(environ: Mapping[str, str]) -> Cluster | None:
    if NOT_SLURM in environ or not any(environ.get(name) for name in JOB_ID):
        return None
    job = read_slurm_job(environ)
    where = {"batch": "batch script", "step": f"step {job.step_id}", "pty": f"interactive step {job.step_id} "
             "(srun --pty)", "salloc": "salloc shell"}[job.context]
    return Cluster("slurm", f"job {job.job_id}, {where}, {job.nnodes} node(s), {job.ntasks} task(s)", job)


def read_slurm_job(environ: Mapping[str, str]) -> SlurmJob:
    import hostlist  # here: outside SLURM, detection needs the standard library only

    sources: dict[str, str] = {}
    reader = _Reader(environ, sources)
    job_id = reader.integer("job_id", JOB_ID, minimum=0)
    step_id = _first(environ, STEP_ID)
    context = _context(environ, step_id)
    scope = "step" if step_id is not None else "job"
    nodes_name, nodes_text = reader.required("nodes", NODELIST[scope])
    try:
        nodes = tuple(hostlist.expand_hostlist(nodes_text))
    except hostlist.BadHostlist as error:
        raise ConfigError(f"{nodes_name}={nodes_text}: not a SLURM node list ({error})", _FIX) from None
    if not nodes:
        raise ConfigError(f"{nodes_name} is empty", _FIX)
    nnodes = reader.optional_integer("nnodes", NUM_NODES[scope], minimum=1)
    if nnodes is None:
        nnodes = len(nodes)
        sources["nnodes"] = f"the count of {nodes_name}"
    if nnodes != len(nodes):
        raise ConfigError(f"{sources['nnodes']} but {nodes_name}={nodes_text} names {len(nodes)} node(s)",
                          "the job's variables disagree: run the launcher with the environment srun gives it")
    ntasks = reader.optional_integer("ntasks", NUM_TASKS[scope], minimum=1)
    tasks_per_node = _tasks_per_node(reader, scope, nnodes, ntasks)
    if ntasks is None:
        ntasks = sum(tasks_per_node)
        sources["ntasks"] = f"the sum of {sources['tasks_per_node']}"
    elif step_id is not None and sum(tasks_per_node) != ntasks:
        raise ConfigError(f"{sources['ntasks']} but {sources['tasks_per_node']} adds up to {sum(tasks_per_node)}",
                          "the step's variables disagree: run the launcher with the environment srun gives it")
    sources["nodes"] = f"{nodes_name}={nodes_text}"
    node_id = proc_id = local_id = None
    if context != "salloc":
        node_id = reader.integer("node_id", ("SLURM_NODEID",), minimum=0)
        proc_id = reader.integer("proc_id", ("SLURM_PROCID",), minimum=0)
        local_id = reader.integer("local_id", ("SLURM_LOCALID",), minimum=0)
        _check_ids(sources, node_id, proc_id, local_id, nnodes, ntasks, tasks_per_node, step_id is not None)
    master_addr = _master_addr(environ, nodes[0], sources)
    master_port = _master_port(environ, job_id, reader)
    return SlurmJob(
        job_id=job_id,
        context=context,
        nodes=nodes,
        tasks_per_node=tasks_per_node,
        ntasks=ntasks,
        node_id=node_id,
        proc_id=proc_id,
        local_id=local_id,
        master_addr=master_addr,
        master_port=master_port,
        step_id=step_id,
        gpus_per_node=reader.optional("gpus_per_node", ("SLURM_GPUS_PER_NODE",)),
        gpus_on_node=reader.optional_integer("gpus_on_node", ("SLURM_GPUS_ON_NODE",), minimum=0),
        gpus_per_task=reader.optional("gpus_per_task", ("SLURM_GPUS_PER_TASK",)),
        cpus_per_task=reader.optional_integer("cpus_per_task", ("SLURM_CPUS_PER_TASK",), minimum=1),
        restart_count=reader.optional_integer("restart_count", ("SLURM_RESTART_COUNT",), minimum=0) or 0,
        sources=sources,
    )


def _master_addr(environ: Mapping[str, str], first_node: str, sources: dict[str, str]) -> str:
    given = environ.get("MASTER_ADDR", "").strip()
    if given:
        sources["master_addr"] = f"MASTER_ADDR={given}, set in the environment: wins over the node list"
        return given
    sources["master_addr"] = f"first of {sources['nodes']}"
    return first_node


def _master_port(environ: Mapping[str, str], job_id: int, reader: _Reader) -> int:
    if environ.get("MASTER_PORT", "").strip():
        port = reader.integer("master_port", ("MASTER_PORT",), minimum=1, maximum=65535)
        reader.sources["master_port"] += ", set in the environment"
        return port
    reader.sources["master_port"] = f"{PORT_BASE} + {reader.sources['job_id']} % {PORT_SPAN}"
    return PORT_BASE + job_id % PORT_SPAN


def _context(environ: Mapping[str, str], step_id: str | None) -> SlurmContext:
    if step_id is not None:
        return "pty" if environ.get("SLURM_PTY_PORT") else "step"
    return "batch" if any(environ.get(name) for name in BATCH_MARKERS) else "salloc"


def _tasks_per_node(reader: _Reader, scope: str, nnodes: int, ntasks: int | None) -> tuple[int, ...]:
    import hostlist

    found = reader.optional("tasks_per_node", TASKS_PER_NODE[scope])
    if found is None:
        if ntasks in (None, nnodes):  # one task per node, the only layout that needs no list
            reader.sources["tasks_per_node"] = "one per node (no SLURM_TASKS_PER_NODE)"
            return (1,) * nnodes
        names = "/".join(TASKS_PER_NODE[scope])
        raise ConfigError(f"{names} is not set, and {reader.sources['ntasks']} on {nnodes} node(s) leaves "
                          "the tasks of each node unknown", _FIX)
    name = reader.names["tasks_per_node"]
    try:
        counts = tuple(hostlist.parse_slurm_tasks_per_node(found))
    except hostlist.BadHostlist:
        raise ConfigError(f"{name}={found}: expected counts such as 4 or 2(x3),1", _FIX) from None
    if len(counts) != nnodes:
        raise ConfigError(f"{name}={found} gives {len(counts)} node(s), but {reader.sources['nnodes']}",
                          "the job's variables disagree: run the launcher with the environment srun gives it")
    return counts


def _check_ids(sources: Mapping[str, str], node_id: int, proc_id: int, local_id: int, nnodes: int, ntasks: int,
               tasks_per_node: Sequence[int], in_step: bool) -> None:
    fix = "the task's variables disagree: run the launcher with the environment srun gives it"
    if node_id >= nnodes:
        raise ConfigError(f"{sources['node_id']} but {sources['nnodes']} (node ids 0..{nnodes - 1})", fix)
    if in_step and proc_id >= ntasks:
        raise ConfigError(f"{sources['proc_id']} but {sources['ntasks']} (task ids 0..{ntasks - 1})", fix)
    if in_step and local_id >= tasks_per_node[node_id]:
        raise ConfigError(f"{sources['local_id']} but {tasks_per_node[node_id]} task(s) on node {node_id} "
                          f"({sources['tasks_per_node']})", fix)


def _first(environ: Mapping[str, str], names: Sequence[str]) -> str | None:
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return value
    return None


class _Reader:
    """Reads variables for ``SlurmJob``'s fields, recording in ``sources`` the variable each value came from."""

    def __init__(self, environ: Mapping[str, str], sources: dict[str, str]) -> None:
        self.environ = environ
        self.sources = sources
        self.names: dict[str, str] = {}  # field → the variable read

    def optional(self, key: str, names: Sequence[str]) -> str | None:
        for name in names:
            value = self.environ.get(name, "").strip()
            if value:
                self.names[key] = name
                self.sources[key] = f"{name}={value}"
                return value
        return None

    def required(self, key: str, names: Sequence[str]) -> tuple[str, str]:
        value = self.optional(key, names)
        if value is None:
            job = _first(self.environ, JOB_ID)
            raise ConfigError(f"{'/'.join(names)} is not set, but SLURM_JOB_ID={job} says this is a SLURM job", _FIX)
        return self.names[key], value

    def optional_integer(self, key: str, names: Sequence[str], minimum: int) -> int | None:
        return self.integer(key, names, minimum) if self.optional(key, names) is not None else None

    def integer(self, key: str, names: Sequence[str], minimum: int, maximum: int | None = None) -> int:
        name, text = self.required(key, names)
        if not text.isdigit() or int(text) < minimum or (maximum is not None and int(text) > maximum):
            bounds = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
            raise ConfigError(f"{name}={text}: expected a whole number {bounds}",
                              f"fix or unset {name}" if name.startswith("MASTER_") else _FIX)
        return int(text)
