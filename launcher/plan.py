"""(JobConfig, target, Cluster, host facts) → LaunchPlan: pure data, printed by ``--dry-run``.

Everything the supervisor will do is decided here: how many ranks, which
backend and start method (and why), the rendezvous, every rank's environment,
thread counts and log files. No processes, no sockets, no torch; the facts
about the host come in as an argument so a test can fake them.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

from launcher.clusters import Cluster
from launcher.errors import ConfigError, UsageError
from launcher.platforms import (
    StartMethodChoice,
    backend_for,
    choose_start_method,
    installed_torch_version,
    libuv_env,
    platform_notes,
)
from launcher.schema import JobConfig
from launcher.targets import FunctionTarget, ModuleTarget, ScriptTarget, Target

CHOSEN_AT_LAUNCH = "<chosen at launch>"
DEFAULT_MULTINODE_PORT = 29500


@dataclass(frozen=True)
class HostFacts:
    """What the plan needs to know about this machine, gathered once by the caller."""

    usable_cpus: int
    visible_gpus: int
    platform: str
    environ: Mapping[str, str]
    hostname: str
    run_id: str  # a fresh id, used when the job does not name one
    cwd: str


@dataclass(frozen=True)
class RendezvousPlan:
    backend: str  # "static" (our loopback-aware store) or an elastic backend such as "c10d"
    endpoint: str
    master_addr: str
    master_port: int | None  # None: a free port, chosen when the store binds
    run_id: str
    min_nodes: int
    max_nodes: int
    node_rank: int
    conf: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RankPlan:
    local_rank: int
    rank: int | None  # None when the rendezvous assigns it (several nodes)
    env: Mapping[str, str]  # what the worker will see (CHOSEN_AT_LAUNCH where not known yet)
    stdout: str | None  # file kept under the log dir, or None
    stderr: str | None
    error_file: str
    hidden: frozenset[str] = frozenset()  # streams redirected away from the console ("stdout", "stderr")


@dataclass(frozen=True)
class LaunchPlan:
    config: JobConfig
    target: Target
    target_args: tuple[str, ...]
    nprocs: int
    backend: str
    backend_reason: str
    start: StartMethodChoice
    rendezvous: RendezvousPlan
    omp_num_threads: str
    omp_reason: str
    log_dir: str | None  # None: a private temp dir, removed at exit
    worker_env: Mapping[str, str]  # the job's extra environment, same on every rank
    ranks: tuple[RankPlan, ...]
    notes: tuple[str, ...]
    cluster: Cluster


def parse_nnodes(text: str) -> tuple[int, int]:
    low, sep, high = text.partition(":")
    try:
        lo, hi = int(low), int(high) if sep else int(low)
    except ValueError:
        raise ConfigError(f"world.nnodes: expected N or MIN:MAX, got {text!r}",
                          "e.g. --nnodes 2 or --nnodes 1:4") from None
    if lo < 1 or hi < lo:
        raise ConfigError(f"world.nnodes: {text!r} is not a valid range", "use 1 <= MIN <= MAX")
    return lo, hi


def resolve_nprocs(spec: int | str, facts: HostFacts) -> int:
    """torchrun's ``--nproc-per-node`` values; ``cpu`` means the usable CPUs."""
    if isinstance(spec, int):
        return spec
    if spec == "gpu":
        if facts.visible_gpus == 0:
            raise ConfigError("world.nprocs: gpu asks for one process per GPU, but no GPU is visible",
                              "use --nprocs N or cpu on this machine")
        return facts.visible_gpus
    if spec == "auto":
        return facts.visible_gpus or facts.usable_cpus
    return facts.usable_cpus  # "cpu"


def plan_rendezvous(config: JobConfig, facts: HostFacts) -> RendezvousPlan:
    world = config.world
    lo, hi = parse_nnodes(world.nnodes)
    run_id = world.rdzv_id if world.rdzv_id != "none" else facts.run_id
    if world.standalone:
        if hi > 1:
            raise UsageError("--standalone conflicts with --nnodes > 1", "drop --standalone for a multi-node job")
        return RendezvousPlan("static", f"127.0.0.1:{CHOSEN_AT_LAUNCH}", "127.0.0.1", None, run_id, 1, 1, 0)
    if world.rdzv_backend == "static":
        if lo != hi:
            raise ConfigError(f"world.nnodes: {world.nnodes}: a range needs an elastic rendezvous",
                              "add --rdzv-backend c10d --rdzv-endpoint HOST:PORT")
        if world.node_rank >= hi:
            raise ConfigError(f"world.node_rank: {world.node_rank} but only {hi} node(s)", "number nodes 0..nnodes-1")
        port = world.master_port
        if port is None and hi > 1:
            port = DEFAULT_MULTINODE_PORT
        shown = str(port) if port is not None else CHOSEN_AT_LAUNCH
        return RendezvousPlan("static", f"{world.master_addr}:{shown}", world.master_addr, port, run_id,
                              hi, hi, world.node_rank, {"rank": str(world.node_rank)})
    if not world.rdzv_endpoint:
        raise ConfigError(f"world.rdzv_backend: {world.rdzv_backend} needs an endpoint",
                          "add --rdzv-endpoint HOST:PORT")
    conf = dict(world.rdzv_conf)
    return RendezvousPlan(world.rdzv_backend, world.rdzv_endpoint, CHOSEN_AT_LAUNCH, None, run_id, lo, hi,
                          world.node_rank, conf)


def choose_threads(nprocs: int, config: JobConfig, facts: HostFacts) -> tuple[str, str]:
    for source, env in (("the job's env", config.env), ("the launcher's environment", facts.environ)):
        if "OMP_NUM_THREADS" in env:
            return env["OMP_NUM_THREADS"], f"set in {source}"
    threads = max(1, facts.usable_cpus // nprocs)
    return str(threads), f"{facts.usable_cpus} usable CPU(s) / {nprocs} local process(es) (torchrun: 1)"


def _log_files(log_dir: str | None, local_rank: int) -> tuple[str | None, str | None, str]:
    rank_dir = os.path.join(log_dir, "attempt_0", str(local_rank)) if log_dir else None
    error_file = os.path.join(rank_dir, "error.json") if rank_dir else "<private temp dir>/error.json"
    stdout = os.path.join(rank_dir, "stdout.log") if rank_dir else None
    stderr = os.path.join(rank_dir, "stderr.log") if rank_dir else None
    return stdout, stderr, error_file


def _hidden_streams(config: JobConfig, local_rank: int) -> frozenset[str]:
    """Streams redirected (and not teed) away from the console, torchrun's ``-r``/``-t`` semantics."""
    redirected = std_bits(config.logs.redirects, local_rank) & ~std_bits(config.logs.tee, local_rank)
    return frozenset(name for name, bit in (("stdout", 1), ("stderr", 2)) if redirected & bit)


def std_bits(spec: str, local_rank: int) -> int:
    """torchrun's redirect/tee syntax: ``3`` for all ranks or ``0:3,1:0`` per local rank."""
    spec = spec.strip()
    try:
        if ":" not in spec:
            return int(spec or "0")
        for item in spec.split(","):
            rank, _, value = item.partition(":")
            if int(rank) == local_rank:
                return int(value)
        return 0
    except ValueError:
        raise ConfigError(f"logs: expected 0-3 or local_rank:value,..., got {spec!r}", "e.g. --tee 3") from None


def build_plan(
    config: JobConfig,
    target: Target,
    target_args: tuple[str, ...],
    cluster: Cluster,
    facts: HostFacts,
) -> LaunchPlan:
    nprocs = resolve_nprocs(config.world.nprocs, facts)
    backend = backend_for(config.world.backend, facts.platform, facts.visible_gpus > 0, facts.visible_gpus, nprocs)
    start = choose_start_method(config.world.start_method, facts.platform, config.env, facts.environ)
    if isinstance(target, ScriptTarget | ModuleTarget) and config.kwargs:
        raise ConfigError("kwargs: only a function entrypoint (module:function) takes keyword arguments",
                          "pass script options in args, or use a module:function entrypoint")
    rendezvous = plan_rendezvous(config, facts)
    threads, threads_reason = choose_threads(nprocs, config, facts)
    log_dir = config.logs.dir
    torch_version = installed_torch_version() if facts.platform == "win32" else None
    worker_env = {**libuv_env(facts.platform, torch_version, config.env), **config.env}
    single_node = rendezvous.max_nodes == 1 or rendezvous.backend == "static"
    ranks = []
    for local_rank in range(nprocs):
        stdout, stderr, error_file = _log_files(log_dir, local_rank)
        rank = rendezvous.node_rank * nprocs + local_rank if single_node else None
        world_size = nprocs * rendezvous.max_nodes if single_node else None
        env = {
            "RANK": _known(rank),
            "LOCAL_RANK": str(local_rank),
            "WORLD_SIZE": _known(world_size),
            "LOCAL_WORLD_SIZE": str(nprocs),
            "GROUP_RANK": _known(rendezvous.node_rank if single_node else None),
            "GROUP_WORLD_SIZE": _known(rendezvous.max_nodes if single_node else None),
            "ROLE_NAME": config.world.role,
            "ROLE_RANK": _known(rank),
            "ROLE_WORLD_SIZE": _known(world_size),
            "MASTER_ADDR": rendezvous.master_addr,
            "MASTER_PORT": _known(rendezvous.master_port),
            "TORCHELASTIC_RUN_ID": rendezvous.run_id,
            "TORCHELASTIC_RESTART_COUNT": "0",
            "TORCHELASTIC_MAX_RESTARTS": str(config.world.max_restarts),
            "TORCHELASTIC_USE_AGENT_STORE": "True" if rendezvous.backend == "static" else CHOSEN_AT_LAUNCH,
            "TORCHELASTIC_ERROR_FILE": error_file,
            "TORCHELASTIC_SIGNALS_TO_HANDLE": config.world.signals_to_handle,
            "TORCH_NCCL_ASYNC_ERROR_HANDLING": facts.environ.get("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1"),
            "OMP_NUM_THREADS": threads,
            **worker_env,
        }
        ranks.append(RankPlan(local_rank, rank, env, stdout, stderr, error_file,
                              _hidden_streams(config, local_rank)))
    notes = [f"OMP_NUM_THREADS={threads}: {threads_reason}", *platform_notes(facts.platform)]
    if rendezvous.backend == "static":
        notes.append(f"the store listens on {rendezvous.master_addr} only")
    return LaunchPlan(
        config=config,
        target=target,
        target_args=target_args,
        nprocs=nprocs,
        backend=backend.backend,
        backend_reason=backend.reason,
        start=start,
        rendezvous=rendezvous,
        omp_num_threads=threads,
        omp_reason=threads_reason,
        log_dir=log_dir,
        worker_env=worker_env,
        ranks=tuple(ranks),
        notes=tuple(notes),
        cluster=cluster,
    )


def _known(value: int | None) -> str:
    return CHOSEN_AT_LAUNCH if value is None else str(value)


def worker_command(plan: LaunchPlan) -> str:
    """What each worker runs, written as the equivalent command line."""
    target = plan.target
    args = " ".join(shlex.quote(a) for a in plan.target_args)
    if isinstance(target, ScriptTarget):
        return f"{sys.executable} {shlex.quote(target.path)} {args}".rstrip()
    if isinstance(target, ModuleTarget):
        return f"{sys.executable} -m {target.module} {args}".rstrip()
    assert isinstance(target, FunctionTarget)
    call_args = ", ".join(["ctx", *(repr(a) for a in plan.target_args),
                           *(f"{k}={v!r}" for k, v in plan.config.kwargs.items())])
    return f"{target.describe()}({call_args})"


AGENT_IN_SERVER = "forked from the same server (the launcher does not import torch)"
AGENT_IN_LAUNCHER = "in the launcher process (imports torch)"


def render_plan(plan: LaunchPlan) -> str:
    """The plan as ``--dry-run`` prints it."""
    rdzv = plan.rendezvous
    nodes = str(rdzv.max_nodes) if rdzv.min_nodes == rdzv.max_nodes else f"{rdzv.min_nodes}:{rdzv.max_nodes}"
    lines = [
        "launch plan",
        f"  target        {worker_command(plan)}",
        f"  cluster       {plan.cluster.kind} ({plan.cluster.description})",
        f"  nodes         {nodes}"
        f" (this node: {rdzv.node_rank}), {plan.nprocs} process(es) per node",
        f"  backend       {plan.backend} ({plan.backend_reason})",
        f"  start method  {plan.start.method}{' + torch preloaded' if plan.start.preload_torch else ''}"
        f" ({plan.start.reason})",
        f"  agent         {AGENT_IN_SERVER if plan.start.agent_in_server else AGENT_IN_LAUNCHER}",
        f"  rendezvous    {rdzv.backend} at {rdzv.endpoint}, run id {rdzv.run_id}",
        f"  restarts      {plan.config.world.max_restarts}",
        f"  seed          {plan.config.seed if plan.config.seed is not None else 'not set'}",
        f"  logs          {plan.log_dir or 'console only (nothing written)'}",
    ]
    lines += [f"  note          {note}" for note in plan.notes]
    for rank in plan.ranks:
        lines.append(f"  rank {rank.rank if rank.rank is not None else '?'} (local {rank.local_rank})")
        lines.append(f"    stdout {rank.stdout or 'console'}, stderr {rank.stderr or 'console'}")
        lines += [f"    {key}={value}" for key, value in sorted(rank.env.items())]
    return "\n".join(lines)
