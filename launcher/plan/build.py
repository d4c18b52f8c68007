"""(JobConfig, target, Cluster, HostFacts) → LaunchPlan, with every value the supervisor needs parsed here.

Everything the supervisor will do is decided here: how many ranks, which GPUs,
backend and start method (and why), where the agent runs, the rendezvous, every
rank's environment, thread counts, output routing, stop signals, grace period,
the hang watchdog, log files, and the open files and processes it needs of the
host's limits. A value that cannot be honoured is a
``LauncherError`` here, so ``--dry-run`` rejects what a launch would. No
processes, no sockets, no torch; the facts about the host come in as an
argument so a test can fake them.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass

from launcher.clusters.model import Cluster
from launcher.compat import mp
from launcher.errors import ConfigError, UsageError
from launcher.hostinfo import GpuVisibility, HostFacts, visible_devices
from launcher.plan.limits import plan_limits
from launcher.plan.model import (
    CHOSEN_AT_LAUNCH,
    AgentPlacement,
    HangPlan,
    LaunchPlan,
    NetworkPlan,
    OutputPlan,
    RankPlan,
    RendezvousPlan,
    SlurmPlan,
    StopPlan,
    run_folder_name,
)
from launcher.plan.slurm import gpus_bound_per_task, plan_slurm
from launcher.platforms import (
    StartMethodChoice,
    available_signals,
    backend_for,
    choose_start_method,
    installed_torch_version,
    libuv_env,
    parse_signals,
    parse_version,
    platform_notes,
)
from launcher.schema import JobConfig
from launcher.targets import ModuleTarget, ScriptTarget, Target

DEFAULT_MULTINODE_PORT = 29500
DEFAULT_RUNS_DIR = "runs"  # run folders of a job with a checkpoint dir or monitor.metrics and no logs.dir
HANG_STARTUP_FACTOR = 5  # start-up allowance of the hang watchdog, in hang timeouts, unless set
TESTED_TORCH = (2, 13)  # the torch release the launcher's use of elastic internals is tested with
PREFIX_TEMPLATE_VARIABLE = "TORCHELASTIC_LOG_LINE_PREFIX_TEMPLATE"  # torchrun's console prefix, e.g. "[${rank}]: "

# Rendezvous options elastic reads as numbers or switches (``RendezvousParameters.get_as_int/bool``):
# checked here, so a typo is an error before anything starts rather than a traceback in the agent.
_RDZV_INT_OPTIONS = ("timeout", "join_timeout", "last_call_timeout", "close_timeout", "heartbeat_timeout",
                     "read_timeout", "keep_alive_interval", "keep_alive_max_attempt", "rank")
_RDZV_BOOL_OPTIONS = ("is_host",)
_BOOL_WORDS = ("1", "true", "t", "yes", "y", "0", "false", "f", "no", "n")


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


def resolve_nprocs(spec: int | str, gpus: GpuVisibility, usable_cpus: int) -> int:
    """torchrun's ``--nproc-per-node`` values; ``cpu`` means the usable CPUs, ``gpu`` the visible GPUs."""
    if isinstance(spec, int):
        return spec
    if spec == "gpu":
        if gpus.count == 0:
            raise ConfigError("world.nprocs: gpu asks for one process per GPU, but no GPU is visible",
                              "use --nprocs N or cpu on this machine")
        return gpus.count
    if spec == "auto":
        return gpus.count or usable_cpus
    return usable_cpus  # "cpu"


def _endpoint(text: str, key: str) -> tuple[str, int | None]:
    """``host[:port]`` (IPv6 in brackets) → (host, port or None)."""
    text = text.strip()
    host, port_text = text, ""
    if text.startswith("[") and "]" in text:
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif ":" in text:
        host, _, port_text = text.rpartition(":")
    if not host:
        raise ConfigError(f"{key}: {text!r} has no host", "write HOST:PORT, e.g. node0:29400")
    if not port_text:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{key}: {text!r}: {port_text!r} is not a TCP port", "use a port in 1..65535")
    return host, int(port_text)


def _rendezvous_conf(conf: dict[str, str]) -> dict[str, str]:
    for key, value in conf.items():
        text = str(value).strip()
        if key in _RDZV_INT_OPTIONS and not text.lstrip("-").isdigit():
            raise ConfigError(f"world.rdzv_conf: {key}={value}: expected a whole number",
                              f"e.g. --rdzv-conf {key}=60")
        if key in _RDZV_BOOL_OPTIONS and text.lower() not in _BOOL_WORDS:
            raise ConfigError(f"world.rdzv_conf: {key}={value}: expected true or false",
                              f"e.g. --rdzv-conf {key}=true")
    return conf


def choose_run_id(rdzv_id: str, max_nodes: int, facts: HostFacts) -> str:
    """The rendezvous id: the one asked for; else, on several nodes, one that every node of the job finds by
    itself (SLURM's job id, or torchrun's literal ``none``, so that torchrun nodes can join); else a fresh one.

    Elastic keys the rendezvous's store by this id: nodes that made up ids of their own never meet.
    """
    if rdzv_id != "none":
        return rdzv_id
    if max_nodes > 1:
        return facts.environ.get("SLURM_JOB_ID") or "none"
    return facts.run_id


def plan_rendezvous(config: JobConfig, facts: HostFacts, listen_all: bool = False) -> RendezvousPlan:
    """``listen_all``: a static store that other hosts reach (node 0 of a multi-host job under a scheduler)."""
    world = config.world
    lo, hi = parse_nnodes(world.nnodes)
    run_id = choose_run_id(world.rdzv_id, 1 if world.standalone else hi, facts)
    conf = _rendezvous_conf(dict(world.rdzv_conf))
    if world.standalone:
        if hi > 1:
            raise UsageError("--standalone conflicts with --nnodes > 1", "drop --standalone for a multi-node job")
        return RendezvousPlan("static", "127.0.0.1", None, "127.0.0.1", run_id, 1, 1, 0, conf)
    if world.rdzv_backend == "static":
        if lo != hi:
            raise ConfigError(f"world.nnodes: {world.nnodes}: a range needs an elastic rendezvous",
                              "add --rdzv-backend c10d --rdzv-endpoint HOST:PORT")
        if world.node_rank >= hi:
            raise ConfigError(f"world.node_rank: {world.node_rank} but only {hi} node(s)", "number nodes 0..nnodes-1")
        port = world.master_port
        if port is None and hi > 1:
            port = DEFAULT_MULTINODE_PORT
        return RendezvousPlan("static", world.master_addr, port, world.master_addr, run_id, hi, hi,
                              world.node_rank, {**conf, "rank": str(world.node_rank)}, listen_all)
    if not world.rdzv_endpoint:
        raise ConfigError(f"world.rdzv_backend: {world.rdzv_backend} needs an endpoint",
                          "add --rdzv-endpoint HOST:PORT")
    host, port = _endpoint(world.rdzv_endpoint, "world.rdzv_endpoint")
    return RendezvousPlan(world.rdzv_backend, host, port, CHOSEN_AT_LAUNCH, run_id, lo, hi, world.node_rank, conf)


SOCKET_INTERFACE_VARIABLES = ("GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME")


def rendezvous_host(config: JobConfig) -> str | None:
    """The host every node of a multi-node job reaches (master or endpoint): None for a single-node job.

    Read before the plan, so that the host facts can say how this node reaches it (``HostFacts.route``).
    """
    world = config.world
    try:
        _, hi = parse_nnodes(world.nnodes)
    except ConfigError:
        return None  # the plan says what is wrong
    if hi <= 1 or world.standalone:
        return None
    if world.rdzv_backend == "static":
        return world.master_addr
    try:
        return _endpoint(world.rdzv_endpoint, "world.rdzv_endpoint")[0] if world.rdzv_endpoint else None
    except ConfigError:
        return None


def plan_network(config: JobConfig, rendezvous: RendezvousPlan, facts: HostFacts) -> NetworkPlan | None:
    """Several nodes: gloo's and NCCL's interface, the one whose address reaches the rendezvous host."""
    route = facts.route
    if rendezvous.max_nodes <= 1 or route is None:
        return None
    if config.world.local_addr:
        how = f"--local-addr {config.world.local_addr}"
    elif route.peer_is_local:
        how = f"the address of the rendezvous host {route.peer}, this node"
    else:
        how = f"the address that reaches the rendezvous host {route.peer}"
    if route.interface is None:
        return NetworkPlan(route.local_address, None, {},
                           f"no interface holds {route.local_address} ({how}): gloo and NCCL choose their own")
    user_set = [name for name in SOCKET_INTERFACE_VARIABLES if name in config.env or name in facts.environ]
    variables = {name: route.interface for name in SOCKET_INTERFACE_VARIABLES if name not in user_set}
    reason = f"{route.interface} holds {route.local_address}, {how}"
    if user_set:
        reason += f"; {', '.join(user_set)} kept as the user set it"
    return NetworkPlan(route.local_address, route.interface, variables, reason)


def _host_decided(rendezvous: RendezvousPlan, facts: HostFacts) -> RendezvousPlan:
    """c10d: this node hosts the store when the endpoint is one of its own addresses that elastic does not
    recognise (it compares host names, which nodes sharing a name, or a name that resolves elsewhere, get
    wrong); ``is_host`` given wins. Where elastic recognises it, elastic decides: it then falls back to a
    client when another launcher on this host serves the store already (several nodes on one machine)."""
    if rendezvous.backend != "c10d" or "is_host" in rendezvous.conf or facts.route is None:
        return rendezvous
    if not facts.route.peer_is_local or facts.route.peer_named_local:
        return rendezvous
    return dataclasses.replace(rendezvous, conf={**rendezvous.conf, "is_host": "true"})


def choose_threads(nprocs: int, config: JobConfig, facts: HostFacts,
                   slurm: SlurmPlan | None = None) -> tuple[str, str]:
    """Threads per worker: the user's OMP_NUM_THREADS, else the CPUs of this launcher (SLURM_CPUS_PER_TASK, or
    the usable CPUs shared by the SLURM tasks on this node) over its processes."""
    for source, env in (("the job's env", config.env), ("the launcher's environment", facts.environ)):
        if "OMP_NUM_THREADS" in env:
            return env["OMP_NUM_THREADS"], f"set in {source}"
    if slurm is not None and slurm.job.cpus_per_task is not None:
        cpus = slurm.job.cpus_per_task
        return str(max(1, cpus // nprocs)), f"SLURM_CPUS_PER_TASK={cpus} / {nprocs} process(es) of this task"
    if slurm is not None and slurm.mode == "per-task":
        tasks = slurm.job.tasks_on_node or 1
        return str(max(1, facts.usable_cpus // tasks)), f"{facts.usable_cpus} usable CPU(s) / {tasks} SLURM task(s) " \
            "on this node"
    threads = max(1, facts.usable_cpus // nprocs)
    return str(threads), f"{facts.usable_cpus} usable CPU(s) / {nprocs} local process(es) (torchrun: 1)"


def run_root(config: JobConfig, cwd: str) -> str | None:
    """Where this run's folder goes: ``logs.dir``; ``runs/`` in the working directory (``cwd``) when the job has a
    checkpoint dir or ``monitor.metrics`` and no ``logs.dir``; None: no run folder (a private one, removed)."""
    if config.logs.dir is not None:
        return config.logs.dir
    if config.checkpoint.dir is not None or (config.monitor.metrics and config.monitor.enabled):
        return os.path.join(cwd, DEFAULT_RUNS_DIR)
    return None


def _log_files(log_dir: str | None, run_id: str, local_rank: int) -> tuple[str | None, str | None, str]:
    rank_dir = os.path.join(log_dir, run_folder_name(run_id, None), "attempt_0", str(local_rank)) if log_dir else None
    error_file = os.path.join(rank_dir, "error.json") if rank_dir else "<private temp dir>/error.json"
    stdout = os.path.join(rank_dir, "stdout.log") if rank_dir else None
    stderr = os.path.join(rank_dir, "stderr.log") if rank_dir else None
    return stdout, stderr, error_file


def std_bits(spec: str, local_rank: int, key: str) -> int:
    """torchrun's redirect/tee syntax: ``3`` for all ranks or ``0:3,1:0`` per local rank (0 none .. 3 both)."""
    spec = spec.strip()
    problem = ConfigError(f"{key}: expected 0-3 or local_rank:value,..., got {spec!r}",
                          "e.g. --tee 3 or --redirects 0:3,1:0")
    try:
        if ":" not in spec:
            value = int(spec or "0")
        else:
            values = {}
            for item in spec.split(","):
                rank, _, text = item.partition(":")
                values[int(rank)] = int(text)
            value = values.get(local_rank, 0)
            if any(not 0 <= v <= 3 for v in values.values()):
                raise problem
    except ValueError:
        raise problem from None
    if not 0 <= value <= 3:
        raise problem
    return value


def plan_output(config: JobConfig, nprocs: int, environ: Mapping[str, str], write_files: bool) -> OutputPlan:
    """Console ranks (``--local-ranks-filter``), streams kept off the console (torchrun's ``-r``/``-t``) and
    the console prefix (``TORCHELASTIC_LOG_LINE_PREFIX_TEMPLATE``, read as torchrun does: empty is unset)."""
    logs = config.logs
    console: set[int] = set()
    for item in logs.local_ranks_filter.split(","):
        text = item.strip()
        if not text:
            continue
        if not text.isdigit():
            raise ConfigError(f"logs.local_ranks_filter: expected local ranks such as 0 or 0,2, got "
                              f"{logs.local_ranks_filter!r}", "e.g. --local-ranks-filter 0")
        if int(text) >= nprocs:
            raise ConfigError(f"logs.local_ranks_filter: local rank {text} does not exist "
                              f"({nprocs} process(es) per node: 0..{nprocs - 1})",
                              f"name local ranks 0..{nprocs - 1}")
        console.add(int(text))
    hidden = set()
    for local_rank in range(nprocs):
        redirected = std_bits(logs.redirects, local_rank, "logs.redirects") & ~std_bits(logs.tee, local_rank,
                                                                                         "logs.tee")
        hidden |= {(local_rank, name) for name, bit in (("stdout", 1), ("stderr", 2)) if redirected & bit}
    return OutputPlan(frozenset(console) or None, frozenset(hidden), write_files, nprocs,
                      environ.get(PREFIX_TEMPLATE_VARIABLE) or None, config.world.role)


def plan_stop(config: JobConfig, platform: str) -> StopPlan:
    """The signals the launcher passes on as a stop, the grace period, and the save-and-stop signal (if here)."""
    signals = parse_signals(config.world.signals_to_handle, platform)
    save = config.checkpoint.stop_signal
    if save is not None and save not in available_signals(platform):
        save = None
    if save is not None and save in signals:
        raise ConfigError(f"checkpoint.stop_signal: {save} is also in world.signals_to_handle, which stops every rank",
                          f"choose another checkpoint.stop_signal, or leave {save} out of --signals-to-handle")
    return StopPlan(signals, config.world.shutdown_timeout, save, save is not None and config.slurm.requeue)


def plan_hang(config: JobConfig) -> HangPlan | None:
    monitor = config.monitor
    if not monitor.hang_timeout:
        return None
    startup = monitor.hang_startup if monitor.hang_startup is not None else HANG_STARTUP_FACTOR * monitor.hang_timeout
    return HangPlan(monitor.hang_timeout, startup)


@dataclass(frozen=True)
class _Start:
    start: StartMethodChoice
    agent: AgentPlacement
    notes: tuple[str, ...]


def plan_start(config: JobConfig, facts: HostFacts) -> _Start:
    """The workers' start method and where the agent runs, with what this Python cannot do (``compat.mp``)."""
    start = choose_start_method(config.world.start_method, facts.platform, config.env, facts.environ)
    problems = mp.probe()
    if start.method != "spawn" and problems.forked_workers is not None:
        start = StartMethodChoice("spawn", False, f"{problems.forked_workers}: workers are spawned")
    if start.method != "forkserver" or not start.preload_torch:
        agent = AgentPlacement(False, "no torch-preloaded server to fork it from")
    elif problems.agent_in_server is not None:
        agent = AgentPlacement(False, problems.agent_in_server)
    else:
        agent = AgentPlacement(True, "the launcher does not import torch")
    return _Start(start, agent, problems.notes())


def torch_note() -> str | None:
    """What the plan says about the installed torch when it is not the release the launcher is tested with."""
    version = installed_torch_version()
    if version is None or parse_version(version) == TESTED_TORCH:
        return None
    tested = ".".join(map(str, TESTED_TORCH))
    return (f"torch {version} is not the tested {tested}: the agent checks elastic's internals when it starts "
            "and, if they changed, keeps elastic's own monitoring (it says so)")


def build_plan(
    config: JobConfig,
    target: Target,
    target_args: tuple[str, ...],
    cluster: Cluster,
    facts: HostFacts,
) -> LaunchPlan:
    slurm, rank_env = None, {}
    if cluster.slurm is not None:  # the world a SLURM step implies, where the user did not say otherwise
        slurm_world = plan_slurm(config.world, cluster.slurm)
        config = dataclasses.replace(config, world=slurm_world.world)
        slurm, rank_env = slurm_world.plan, dict(slurm_world.rank_env)
    gpus = visible_devices(config.env.get("CUDA_VISIBLE_DEVICES", facts.environ.get("CUDA_VISIBLE_DEVICES")),
                           facts.installed_gpus)
    nprocs = resolve_nprocs(config.world.nprocs, gpus, facts.usable_cpus)
    log_dir = run_root(config, facts.cwd)
    limits = plan_limits(nprocs, log_dir is not None, facts.platform, facts.limits)  # before any per-rank work
    backend = backend_for(config.world.backend, facts.platform, gpus.count, nprocs)
    start = plan_start(config, facts)
    if isinstance(target, ScriptTarget | ModuleTarget) and config.kwargs:
        raise ConfigError("kwargs: only a function entrypoint (module:function) takes keyword arguments",
                          "pass script options in args, or use a module:function entrypoint")
    # Under SLURM, node 0's store serves the other nodes, to whom its name may resolve differently than to itself.
    listen_all = slurm is not None and slurm.mode in ("per-node", "per-task") and slurm.job.nnodes > 1
    rendezvous = _host_decided(plan_rendezvous(config, facts, listen_all), facts)
    network = plan_network(config, rendezvous, facts)
    threads, threads_reason = choose_threads(nprocs, config, facts, slurm)
    output = plan_output(config, nprocs, facts.environ, log_dir is not None)
    stop = plan_stop(config, facts.platform)
    torch_version = installed_torch_version() if facts.platform == "win32" else None
    # One task per rank: SLURM's local and group values replace those of elastic's one-process "node".
    worker_env = {**libuv_env(facts.platform, torch_version, config.env),
                  **(network.variables if network is not None else {}), **config.env, **rank_env}
    single_node = rendezvous.max_nodes == 1 or rendezvous.backend == "static"
    ranks = []
    for local_rank in range(nprocs):
        stdout, stderr, error_file = _log_files(log_dir, rendezvous.run_id, local_rank)
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
            "MASTER_PORT": _known(rendezvous.port if rendezvous.backend == "static" else None),
            "TORCHELASTIC_RUN_ID": rendezvous.run_id,
            "TORCHELASTIC_RESTART_COUNT": "0",
            "TORCHELASTIC_MAX_RESTARTS": str(config.world.max_restarts),
            "TORCHELASTIC_USE_AGENT_STORE": "True" if rendezvous.backend == "static" else CHOSEN_AT_LAUNCH,
            "TORCHELASTIC_ERROR_FILE": error_file,
            "TORCHELASTIC_SIGNALS_TO_HANDLE": ",".join(stop.signals),
            "TORCH_NCCL_ASYNC_ERROR_HANDLING": facts.environ.get("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1"),
            "OMP_NUM_THREADS": threads,
            **worker_env,
        }
        ranks.append(RankPlan(local_rank, rank, env, stdout, stderr, error_file))
    notes = [f"OMP_NUM_THREADS={threads}: {threads_reason}", *platform_notes(facts.platform), *start.notes]
    if config.checkpoint.stop_signal is not None and stop.save_signal is None:
        notes.append(f"checkpoint.stop_signal: {config.checkpoint.stop_signal} does not exist here: no save and stop")
    if slurm is not None:
        notes += slurm.notes
    if rank_env:
        notes.append(f"{', '.join(rank_env)}: SLURM's (each task is a rendezvous node of one process)")
    if slurm is not None and (gpu_text := gpus_bound_per_task(slurm, gpus.count)) is not None:
        notes.append(gpu_text)
    if rendezvous.backend == "static" and rendezvous.listen_all:
        notes.append(f"the store listens on every interface of node 0 (the others connect to {rendezvous.master_addr})")
    elif rendezvous.backend == "static":
        notes.append(f"the store listens on {rendezvous.master_addr} only")
    if rendezvous.conf.get("is_host") == "true" and "is_host" not in config.world.rdzv_conf:
        notes.append(f"this node hosts the rendezvous store: {rendezvous.host} is one of its addresses")
    found = facts.rendezvous
    if found is not None and found.host == rendezvous.host and not found.addresses:
        notes.append(f"the rendezvous host {found.host} does not resolve on this host ({found.problem})")
    torch_text = torch_note()
    if torch_text is not None:
        notes.append(torch_text)
    return LaunchPlan(
        config=config,
        target=target,
        target_args=target_args,
        nprocs=nprocs,
        backend=backend.backend,
        backend_reason=backend.reason,
        gpus=gpus,
        start=start.start,
        agent=start.agent,
        rendezvous=rendezvous,
        omp_num_threads=threads,
        log_dir=log_dir,
        worker_env=worker_env,
        ranks=tuple(ranks),
        output=output,
        stop=stop,
        hang=plan_hang(config),
        notes=tuple(notes),
        cluster=cluster,
        limits=limits,
        slurm=slurm,
        network=network,
    )


def _known(value: int | None) -> str:
    return CHOSEN_AT_LAUNCH if value is None else str(value)
