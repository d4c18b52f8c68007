"""The launch plan: pure data, every decision already parsed and validated, printed by ``--dry-run``.

The supervisor reads only this; nothing it needs is parsed again at run time,
so ``--dry-run`` and a real launch accept and reject the same things.
Never imports torch.
"""

from __future__ import annotations

import re
import string
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from launcher.clusters.model import Cluster, SlurmJob
from launcher.hostinfo import GpuVisibility
from launcher.platforms import StartMethodChoice
from launcher.schema import JobConfig
from launcher.targets import Target

CHOSEN_AT_LAUNCH = "<chosen at launch>"


@dataclass(frozen=True)
class AgentPlacement:
    """Where elastic's agent runs: a child of the torch-preloaded server, or the launcher process."""

    in_server: bool
    reason: str


@dataclass(frozen=True)
class RendezvousPlan:
    backend: str  # "static" (our loopback-aware store) or an elastic backend such as "c10d"
    host: str  # the store's host (static: the master address)
    port: int | None  # None: a free port, chosen when the store binds
    master_addr: str  # as the workers see it (CHOSEN_AT_LAUNCH when the rendezvous decides)
    run_id: str
    min_nodes: int
    max_nodes: int
    node_rank: int
    conf: Mapping[str, str] = field(default_factory=dict)  # checked values, as elastic's parameters take them
    listen_all: bool = False  # static: node 0's store listens on every interface (other hosts connect to it)

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port if self.port is not None else CHOSEN_AT_LAUNCH}"


@dataclass(frozen=True)
class NetworkPlan:
    """The interface the workers' gloo and NCCL use across nodes, and why."""

    local_address: str  # this node's address that reaches the rendezvous host: the others reach it there
    interface: str | None  # the interface holding it; None: not found
    variables: Mapping[str, str]  # set in every worker's environment (GLOO_SOCKET_IFNAME...): what the user did not set
    reason: str


RUN_FOLDER_TIME = "%Y%m%d-%H%M%S"
_UNSAFE_IN_NAMES = re.compile(r"[^A-Za-z0-9._-]+")


def run_folder_name(run_id: str, started: float | None) -> str:
    """A run's folder under the log dir: ``20261130-235959-<run id>`` (``<YYYYmmdd-HHMMSS>-...`` before it starts).

    The run id is reduced to characters safe in a file name.
    """
    safe_id = _UNSAFE_IN_NAMES.sub("_", run_id).strip("._") or "run"
    when = "<YYYYmmdd-HHMMSS>" if started is None else time.strftime(RUN_FOLDER_TIME, time.localtime(started))
    return f"{when}-{safe_id}"


@dataclass(frozen=True)
class OutputPlan:
    """What worker output goes where: the console (some ranks, some streams) and files."""

    console_ranks: frozenset[int] | None  # local ranks shown on the console; None: all
    hidden: frozenset[tuple[int, str]]  # (local rank, "stdout"|"stderr") redirected away from the console
    write_files: bool  # keep stdout.log/stderr.log per rank
    nprocs: int
    prefix_template: str | None  # TORCHELASTIC_LOG_LINE_PREFIX_TEMPLATE: replaces [rankN]: (None: not set)
    role: str  # ${role_name} in the template

    @property
    def discards(self) -> bool:
        """Whether a stream redirected away from the console has no file to go to (no log dir)."""
        return bool(self.hidden) and not self.write_files

    @property
    def prefixed(self) -> bool:
        """Whether console lines get a prefix: more than one rank on the console, or a prefix template.

        With a template, torchrun prefixes every line it tees, one rank or many: so does the launcher.
        """
        shown = self.nprocs if self.console_ranks is None else len(self.console_ranks)
        return shown > 1 or self.prefix_template is not None

    def shows_as_is(self, local_rank: int) -> bool:
        """Whether the rank's stderr reaches the console byte for byte: shown, and the only rank shown, unprefixed."""
        shown = self.console_ranks is None or local_rank in self.console_ranks
        return shown and not self.prefixed and (local_rank, "stderr") not in self.hidden

    def template_prefix(self, local_rank: int, rank: int) -> str | None:
        """The template's prefix for a rank, substituted as torchrun does; None without a template.

        ``${role_name}``, ``${rank}`` (global) and ``${local_rank}``; any other ``$`` text stays as written
        (``string.Template.safe_substitute``, as torchrun: an unknown ``${x}`` is not an error).
        """
        if self.prefix_template is None:
            return None
        return string.Template(self.prefix_template).safe_substitute(role_name=self.role, rank=rank,
                                                                     local_rank=local_rank)


@dataclass(frozen=True)
class StopPlan:
    """How the job is stopped: the signals the launcher handles and forwards, and the grace period."""

    signals: tuple[str, ...]  # names that exist on this platform, e.g. ("SIGTERM", "SIGINT")
    grace_period: float  # seconds between SIGTERM and SIGKILL
    save_signal: str | None = None  # every rank saves a checkpoint, then the job stops; None: off or not here
    requeue_under_slurm: bool = False  # after such a stop in a SLURM job, its task 0 requeues it (slurm.requeue)


@dataclass(frozen=True)
class HangPlan:
    """The hang watchdog: a rank without progress for ``timeout`` s (``startup`` s before its first)."""

    timeout: float
    startup: float


@dataclass(frozen=True)
class LimitsPlan:
    """What the launch needs of the host's limits (``plan/limits.py``), and what the workers get."""

    agent_open_files: int  # about as many fds as the agent holds with every rank running (the most of any process)
    processes: int  # at least: the workers and the launcher's own processes
    open_files_soft: int | None  # the user's soft limit, which the workers get back (None: unknown)
    open_files_hard: int | None  # what the forkserver and the agent raise theirs to (None: unknown)


@dataclass(frozen=True)
class RankPlan:
    local_rank: int
    rank: int | None  # None when the rendezvous assigns it (several nodes)
    env: Mapping[str, str]  # what the worker will see (CHOSEN_AT_LAUNCH where not known yet)
    stdout: str | None  # file kept under the log dir, or None
    stderr: str | None
    error_file: str


# How a launch under SLURM uses its step: one launcher per node (a c10d rendezvous across them), one
# task per rank (each task runs its rank in place), one host (one task on one node, or not in a step:
# as on one machine), or the rendezvous flags as given (SLURM's topology unused).
SlurmMode = Literal["per-node", "per-task", "one-host", "as-given"]


@dataclass(frozen=True)
class SlurmPlan:
    """What the launch takes from SLURM, and why (``plan/slurm.py``)."""

    job: SlurmJob
    mode: SlurmMode
    reason: str
    notes: tuple[str, ...] = ()  # what a given flag replaced, what the user should know


@dataclass(frozen=True)
class LaunchPlan:
    config: JobConfig
    target: Target
    target_args: tuple[str, ...]
    nprocs: int
    backend: str
    backend_reason: str
    gpus: GpuVisibility  # what CUDA will give the workers
    start: StartMethodChoice
    agent: AgentPlacement
    rendezvous: RendezvousPlan
    omp_num_threads: str
    log_dir: str | None  # None: a private temp dir, removed at exit
    worker_env: Mapping[str, str]  # the job's extra environment, same on every rank
    ranks: tuple[RankPlan, ...]
    output: OutputPlan
    stop: StopPlan
    hang: HangPlan | None
    notes: tuple[str, ...]
    cluster: Cluster
    limits: LimitsPlan
    slurm: SlurmPlan | None = None  # on a SLURM cluster
    network: NetworkPlan | None = None  # several nodes: the interface their traffic takes
