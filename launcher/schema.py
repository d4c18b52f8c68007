"""The job's settings as frozen dataclasses: one schema for YAML, flags and the API.

Both sides read it: the launcher (``config.py`` validates YAML and overrides
against these fields) and the workers (``launcher.runtime`` reads the sections
that concern it). So it holds plain data only and imports nothing heavy.

A field whose ``metadata`` has ``path=True`` holds a filesystem path: in a
YAML file it resolves against the file's folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

NprocSpec = int | Literal["auto", "cpu", "gpu"]
Backend = Literal["auto", "nccl", "gloo"]
StartMethod = Literal["auto", "spawn", "forkserver", "fork"]


def path_field(default: str | None = None) -> Any:
    """A field holding a path (resolved against the YAML file's folder)."""
    return field(default=default, metadata={"path": True})


@dataclass(frozen=True)
class WorldSettings:
    """How many processes, where, and how they meet (torchrun's flags)."""

    nprocs: NprocSpec = 1  # per node; torchrun's --nproc-per-node
    nnodes: str = "1:1"  # "2" or "1:4"
    node_rank: int = 0
    backend: Backend = "auto"
    start_method: StartMethod = "auto"
    master_addr: str = "127.0.0.1"
    master_port: int | None = None  # None: a free port chosen at launch
    rdzv_backend: str = "static"
    rdzv_endpoint: str = ""
    rdzv_id: str = "none"
    rdzv_conf: dict[str, str] = field(default_factory=dict)
    standalone: bool = False
    max_restarts: int = 0
    monitor_interval: float = 0.1
    role: str = "default"
    local_addr: str | None = None
    signals_to_handle: str = "SIGTERM,SIGINT,SIGHUP,SIGQUIT"
    shutdown_timeout: float = 3.0


@dataclass(frozen=True)
class LogSettings:
    """Where worker output goes (torchrun's --log-dir, --redirects, --tee, --local-ranks-filter)."""

    dir: str | None = path_field()  # None: console only, nothing written
    redirects: str = "0"  # 0 none, 1 stdout, 2 stderr, 3 both; or "0:3,1:0"
    tee: str = "0"
    local_ranks_filter: str = ""  # "0" or "0,2": ranks shown on the console


@dataclass(frozen=True)
class DataSettings:
    """Defaults of ``ctx.dataloader`` (per rank; keyword arguments override them)."""

    batch_size: int = 1
    shuffle: bool = True
    drop_last: bool = False
    even_shards: Literal["pad", "drop"] = "pad"
    num_workers: int | Literal["auto"] = "auto"
    pin_memory: bool | Literal["auto"] = "auto"
    prefetch_factor: int | None = None
    persistent_workers: bool | Literal["auto"] = "auto"
    deterministic: bool = False
    dataset: str | None = None  # "module:factory", for bench-data


@dataclass(frozen=True)
class MonitorSettings:
    """Watching the workers while they run."""

    hang_timeout: float | None = None  # seconds without progress before a rank counts as hung
    hang_startup: float | None = None  # allowance for imports and rendezvous; default 5 x hang_timeout


@dataclass(frozen=True)
class JobConfig:
    """Everything a job is: what to run, on how many processes, with which settings."""

    entrypoint: str | None = path_field()
    args: list[str] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    cluster: str | None = path_field()
    world: WorldSettings = field(default_factory=WorldSettings)
    logs: LogSettings = field(default_factory=LogSettings)
    data: DataSettings = field(default_factory=DataSettings)
    monitor: MonitorSettings = field(default_factory=MonitorSettings)
