"""The job's settings as frozen dataclasses: one schema for YAML, flags and the API.

Both sides read it: the launcher (``launcher.config`` validates YAML, flags
and overrides against these fields) and the workers (``launcher.runtime`` reads
the sections that concern it, and checks keyword overrides against the same
fields). So it holds plain data only and imports nothing heavy.

Each field declares what the type system cannot say, once, in its metadata
(``setting(...)``): a range (``minimum``, ``above``, ``maximum``) and whether it
holds a filesystem path (resolved against the YAML file's folder).
``launcher.validation`` enforces both for every field.
"""

from __future__ import annotations

from dataclasses import Field, dataclass, field, fields, is_dataclass
from typing import Any, Literal

NprocSpec = int | Literal["auto", "cpu", "gpu"]
Backend = Literal["auto", "nccl", "gloo"]
StartMethod = Literal["auto", "spawn", "forkserver", "fork"]


def setting(default: Any, *, minimum: float | None = None, above: float | None = None,
            maximum: float | None = None, path: bool = False, key: str | None = None) -> Any:
    """A field with what its type cannot say: ``minimum <= value``, ``value > above``, ``value <= maximum``
    (numbers only; other values of a union such as ``'auto'`` are not ranged), or a path (a union's
    words, such as ``'auto'``, are not paths). ``key``: its name in a job file when the field's own name
    cannot be that (``async``, a Python keyword)."""
    limits = {"minimum": minimum, "above": above, "maximum": maximum, "path": path or None, "key": key}
    return field(default=default, metadata={k: v for k, v in limits.items() if v is not None})


def key_of(item: Field[Any]) -> str:
    """A field's name in a job file."""
    return str(item.metadata.get("key", item.name))


def as_tree(section: Any) -> dict[str, Any]:
    """A settings dataclass as a job file holds it: sections as mappings, every value under its key."""
    return {key_of(item): as_tree(value) if is_dataclass(value := getattr(section, item.name)) else value
            for item in fields(section)}


@dataclass(frozen=True)
class WorldSettings:
    """How many processes, where, and how they meet (torchrun's flags)."""

    nprocs: NprocSpec = setting(1, minimum=1)  # per node; torchrun's --nproc-per-node
    nnodes: str = "1:1"  # "2" or "1:4"
    node_rank: int = setting(0, minimum=0)
    backend: Backend = "auto"
    start_method: StartMethod = "auto"
    master_addr: str = "127.0.0.1"
    master_port: int | None = setting(None, minimum=1, maximum=65535)  # None: a free port chosen at launch
    rdzv_backend: str = "static"
    rdzv_endpoint: str = ""
    rdzv_id: str = "none"
    rdzv_conf: dict[str, str] = field(default_factory=dict)
    standalone: bool = False
    max_restarts: int = setting(0, minimum=0)
    monitor_interval: float = setting(0.1, above=0)
    role: str = "default"
    local_addr: str | None = None
    signals_to_handle: str = "SIGTERM,SIGINT,SIGHUP,SIGQUIT"
    shutdown_timeout: float = setting(3.0, minimum=0)


@dataclass(frozen=True)
class LogSettings:
    """Where worker output goes (torchrun's --log-dir, --redirects, --tee, --local-ranks-filter)."""

    dir: str | None = setting(None, path=True)  # None: console only, nothing written
    redirects: str = "0"  # 0 none, 1 stdout, 2 stderr, 3 both; or "0:3,1:0"
    tee: str = "0"
    local_ranks_filter: str = ""  # "0" or "0,2": ranks shown on the console


@dataclass(frozen=True)
class DataSettings:
    """Defaults of ``ctx.dataloader`` (per rank; keyword arguments override them)."""

    batch_size: int = setting(1, minimum=1)
    shuffle: bool = True
    drop_last: bool = False
    even_shards: Literal["pad", "drop"] = "pad"
    num_workers: int | Literal["auto"] = setting("auto", minimum=0)
    pin_memory: bool | Literal["auto"] = "auto"
    prefetch_factor: int | None = setting(None, minimum=1)
    persistent_workers: bool | Literal["auto"] = "auto"
    deterministic: bool = False
    dataset: str | None = None  # "module:factory", for bench-data


@dataclass(frozen=True)
class MonitorSettings:
    """Watching the workers while they run."""

    hang_timeout: float | None = setting(None, above=0)  # seconds without progress before a rank counts as hung
    hang_startup: float | None = setting(None, minimum=0)  # for imports and rendezvous; default 5 x hang_timeout
    enabled: bool = True  # the monitor thread in every worker (progress line, metrics); false: neither
    interval: float = setting(1.0, above=0)  # seconds between the monitor's records
    metrics: bool = False  # keep the metrics in a run directory even without logs.dir or a checkpoint dir
    # auto: a bar redrawn in place on a terminal, a plain line every lines_every seconds otherwise
    progress: Literal["auto", "bar", "lines", "off"] = "auto"
    lines_every: float = setting(30.0, above=0)  # seconds between plain progress lines


@dataclass(frozen=True)
class CheckpointSettings:
    """Defaults of ``ctx.checkpointer()`` (keyword arguments, by field name, override them)."""

    dir: str | None = setting(None, path=True)  # None: nothing is saved
    every_steps: int | None = setting(None, minimum=1)  # maybe_save(step) saves when step % every_steps == 0
    every_seconds: float | None = setting(None, above=0)  # ...and when this long passed since the last save
    keep: int | None = setting(3, minimum=1)  # complete checkpoints kept, newest first; None: every one
    async_: bool = setting(True, key="async")  # written by a background thread; false: in the training thread
    resume: Literal["auto", "never"] | str = setting("auto", path=True)  # auto: the latest in dir; or a PATH
    # Sent to the launcher (SLURM's preemption notice, a user): every rank saves at its next maybe_save at one
    # agreed step, then the job stops with exit code 75. Never SIGTERM: that stops every rank at once.
    stop_signal: Literal["SIGUSR1", "SIGUSR2"] | None = "SIGUSR1"


@dataclass(frozen=True)
class AmpSettings:
    """Mixed precision: what ``ctx.autocast()`` and ``ctx.grad_scaler()`` do (the loop is the same either way)."""

    enabled: bool = False  # false: autocast is a null context and the scaler a no-op
    # bfloat16 needs no loss scaling; float16 gets a GradScaler on CUDA, and runs as bfloat16 on the CPU
    # (one warning line): CPU float16 kernels are slow or missing and its gradients would need scaling.
    dtype: Literal["float16", "bfloat16"] = "bfloat16"


@dataclass(frozen=True)
class SlurmSettings:
    """The sbatch script of ``launcher sbatch`` (resources, setup, preemption) and requeue after a save and stop."""

    # per_node: one launcher per node starts the node's ranks; per_task: SLURM starts every rank as a launcher
    mode: Literal["per_node", "per_task"] = "per_node"
    nodes: int = setting(1, minimum=1)
    ntasks_per_node: int | None = setting(None, minimum=1)  # per_task: ranks per node (default: gpus_per_node,
    # else world.nprocs)
    gpus_per_node: int | None = setting(None, minimum=0)
    cpus_per_task: int | None = setting(None, minimum=1)
    partition: str | None = None
    time: str | None = None  # as sbatch takes it: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS
    account: str | None = None
    qos: str | None = None
    mem: str | None = None  # per node, e.g. 64G
    constraint: str | None = None
    job_name: str | None = None  # default: the job file's name without .yaml
    output: str | None = setting(None, path=True)  # folder of slurm-<jobid>.out/.err; default logs.dir, else the job's
    extra_sbatch: list[str] = field(default_factory=list)  # more #SBATCH options, e.g. --mail-type=END
    setup: list[str] = field(default_factory=list)  # shell lines before srun, e.g. module load cuda (run as written)
    python: str | None = None  # the launchers' interpreter on the nodes; default: the one running launcher sbatch
    # Sent to the batch script ahead of the time limit (or by scancel --signal=USR1 --batch): the launchers
    # save and stop on it, so it is checkpoint.stop_signal (null: that one; no warning when that is null too).
    preempt_signal: Literal["SIGUSR1", "SIGUSR2"] | None = None
    preempt_warning: int = setting(120, minimum=1, maximum=65535)  # seconds before the time limit
    requeue: bool = True  # after a save and stop under SLURM, task 0 requeues the job (scontrol requeue)


@dataclass(frozen=True)
class JobConfig:
    """Everything a job is: what to run, on how many processes, with which settings."""

    entrypoint: str | None = setting(None, path=True)
    args: list[str] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    cluster: str | None = setting(None, path=True)
    world: WorldSettings = field(default_factory=WorldSettings)
    logs: LogSettings = field(default_factory=LogSettings)
    data: DataSettings = field(default_factory=DataSettings)
    monitor: MonitorSettings = field(default_factory=MonitorSettings)
    checkpoint: CheckpointSettings = field(default_factory=CheckpointSettings)
    amp: AmpSettings = field(default_factory=AmpSettings)
    slurm: SlurmSettings = field(default_factory=SlurmSettings)
