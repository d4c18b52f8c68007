"""A throw-away SLURM cluster on this machine: a private munged, one slurmctld and N slurmd "nodes".

The nodes are named by loopback addresses (``127.0.0.1``, ``127.0.0.2``...): a job's
``SLURM_NODELIST`` is then ``127.0.0.[1-2]``, every node name resolves without a name
service, and nothing global changes (no /etc/hosts entry, no system munged: munged runs
on a socket in the cluster's own folder, with its own key). Each cluster has its own
folder, cluster name, free ports and a random first job id (ports derived from job ids
then differ between clusters running side by side). Every daemon carries the cluster's
tag in its environment; a slurmstepd has an empty one but keeps its node's log (in the
cluster's folder) open: ``leftovers()`` finds what a finished job left on the nodes by
both. ``running_cluster`` stops exactly the daemons it started, by their process, and
removes its folder.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from launcher.testing.processes import TAG_VARIABLE, kill_tagged, tagged_processes

PROGRAMS = ("munged", "slurmctld", "slurmd", "sinfo", "squeue", "scontrol", "sbatch", "srun", "scancel")
# What a surrounding SLURM job or allocation puts in the environment: a command sent to this cluster must not see it.
OUTER_PREFIXES = ("SLURM_", "SBATCH_", "SRUN_", "SALLOC_", "SQUEUE_", "SINFO_", "SCANCEL_")
FINISHED = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY",
                      "BOOT_FAIL", "DEADLINE"})


class ClusterUnavailable(Exception):
    """The daemons cannot run here (not root, not installed) or did not come up: the reason."""


@dataclass(frozen=True)
class LocalSlurm:
    folder: Path
    conf: Path
    nodes: tuple[str, ...]
    tag: str  # in the environment of every daemon
    daemons: tuple[int, ...]  # pids, munged first

    def environ(self, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` for a client of this cluster: its slurm.conf, nothing of an outer SLURM job."""
        env = {name: value for name, value in base.items() if not name.startswith(OUTER_PREFIXES)}
        env["SLURM_CONF"] = str(self.conf)
        return env

    def command(self, args: Sequence[object], env: Mapping[str, str] | None = None, timeout: float = 30,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a SLURM client (``sbatch``, ``squeue``...) against this cluster."""
        done = subprocess.run([str(arg) for arg in args], env=self.environ(os.environ if env is None else env),
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(map(str, args))}: exit {done.returncode}\n{done.stdout}{done.stderr}")
        return done

    def job(self, job_id: str) -> dict[str, str]:
        """``scontrol show job``'s fields (JobState, Restarts, ExitCode...); finished jobs stay for MinJobAge."""
        line = self.command(["scontrol", "show", "job", "-o", job_id]).stdout.strip()
        return dict(field.split("=", 1) for field in line.split() if "=" in field)

    def wait_until_finished(self, job_id: str, timeout: float) -> dict[str, str]:
        """Poll the job until it has finished (COMPLETED, FAILED, CANCELLED...); its fields then.
        Fails with them after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            fields = self.job(job_id)
            if fields["JobState"] in FINISHED:
                return fields
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} after {timeout} s: {fields}")
            time.sleep(0.1)

    def queued(self) -> dict[str, str]:
        """Job id → state (PENDING, RUNNING, COMPLETING...) of the jobs not finished yet."""
        lines = self.command(["squeue", "-h", "-o", "%i %T"]).stdout.splitlines()
        return dict(line.split() for line in lines if line.strip())

    def leftovers(self) -> list[psutil.Process]:
        """Live slurmstepd processes of this cluster (found by the node log they hold open), and any other
        process but the daemons and slurmctld's helper that carries the cluster's tag."""
        ours = set(self.daemons)
        for pid in self.daemons:
            with contextlib.suppress(psutil.Error):
                ours.update(child.pid for child in psutil.Process(pid).children()
                            if "slurmscriptd" in " ".join(child.cmdline()))
        left = [process for process in tagged_processes(self.tag) if process.pid not in ours]
        for process in psutil.process_iter(["name", "status"]):
            stepd = (process.info["name"] or "").startswith("slurmstepd")
            if not stepd or process.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            with contextlib.suppress(psutil.Error):
                if any(Path(file.path).is_relative_to(self.folder) for file in process.open_files()):
                    left.append(process)
        return left


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free now (held open together, so never the same twice)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def slurm_conf(folder: Path, name: str, nodes: Sequence[str], cpus: int, ports: Sequence[int],
               first_job_id: int) -> str:
    """The configuration of a cluster living in ``folder``: ``ports`` are slurmctld's, then one per node."""
    node_lines = [f"NodeName={node} Port={port} CPUs={cpus} RealMemory=4000 State=UNKNOWN"
                  for node, port in zip(nodes, ports[1:], strict=True)]
    return "\n".join([
        f"ClusterName={name}",
        f"SlurmctldHost={socket.gethostname().split('.')[0]}(127.0.0.1)",
        "SlurmUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        # cred_expire: a requeued job may start again this many seconds after it stopped (SLURM's default: 120)
        f"AuthInfo=socket={folder / 'munge.socket'},cred_expire=5",
        "SchedulerParameters=sched_interval=1",  # and the scheduler looks for it every second (default: 60)
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "MpiDefault=none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "SlurmdParameters=config_overrides",  # more CPUs than this machine has: 2 nodes x 2 ranks on 2 cores
        "ReturnToService=2",
        f"FirstJobId={first_job_id}",
        "KillWait=30",  # scancel's grace period: SIGTERM, then SIGKILL after this many seconds
        "MinJobAge=300",  # finished jobs stay visible to scontrol show job
        f"StateSaveLocation={folder / 'state'}",
        f"SlurmdSpoolDir={folder / 'spool' / '%n'}",
        f"SlurmctldPidFile={folder / 'slurmctld.pid'}",
        f"SlurmdPidFile={folder / 'slurmd-%n.pid'}",
        f"SlurmctldLogFile={folder / 'slurmctld.log'}",
        f"SlurmdLogFile={folder / 'slurmd-%n.log'}",
        f"SlurmctldPort={ports[0]}",
        *node_lines,
        "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
        "",
    ])


def _missing() -> str | None:
    if os.name != "posix" or os.geteuid() != 0:
        return "the SLURM daemons run as root here (slurmd starts jobs as any user)"
    absent = [name for name in PROGRAMS if shutil.which(name) is None]
    if absent:
        return f"not installed: {', '.join(absent)} (scripts/cluster-tools.sh installs slurm-wlm and munge)"
    return None


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class _Starter:
    """Starts the daemons of one cluster, remembering each one so that stop() ends exactly those."""

    def __init__(self, folder: Path, tag: str) -> None:
        self.folder = folder
        self.env = {**os.environ, TAG_VARIABLE: tag}
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, args: Sequence[str]) -> None:
        log = (self.folder / f"{name}.out").open("wb")
        with log:
            process = subprocess.Popen(args, cwd=self.folder, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self.started.append((name, process))

    def check_alive(self) -> None:
        for name, process in self.started:
            if process.poll() is not None:
                raise ClusterUnavailable(f"{name} exited with {process.returncode}:\n{self.logs(name)}")

    def logs(self, name: str) -> str:
        stem = name.replace(" ", "-")
        return "\n".join(f"--- {path.name}\n{_tail(path)}" for path in sorted(self.folder.glob(f"{stem}*")))

    def stop(self) -> None:
        """SIGTERM, newest first (nodes, controller, munged); SIGKILL what is still there after 10 s."""
        for _, process in reversed(self.started):
            if process.poll() is None:
                process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _wait_until_idle(cluster: LocalSlurm, starter: _Starter, timeout: float) -> None:
    """Poll sinfo until every node is idle (about 1 s after the start)."""
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        starter.check_alive()
        done = cluster.command(["sinfo", "-h", "-N", "-o", "%N %t"], check=False, timeout=10)
        if done.returncode == 0:
            states = dict(line.split() for line in done.stdout.splitlines() if line.strip())
            if set(states) == set(cluster.nodes) and set(states.values()) == {"idle"}:
                return
        time.sleep(0.05)
    raise ClusterUnavailable(f"the nodes are not idle after {timeout} s: {states}\n{starter.logs('slurm')}")


@contextlib.contextmanager
def running_cluster(nodes: int = 2, cpus: int = 8, start_timeout: float = 30) -> Iterator[LocalSlurm]:
    """A cluster of ``nodes`` idle nodes with ``cpus`` CPUs each; everything it started is gone afterwards.

    Raises ``ClusterUnavailable`` with the reason when the daemons cannot start (one retry: a port
    chosen free may be taken by another program before a daemon binds it).
    """
    reason = _missing()
    if reason:
        raise ClusterUnavailable(reason)
    for attempt in range(2):
        with _one_cluster(nodes, cpus, start_timeout) as cluster:
            if isinstance(cluster, ClusterUnavailable):
                if attempt == 1:
                    raise cluster
                continue
            yield cluster
            return


@contextlib.contextmanager
def _one_cluster(nodes: int, cpus: int, start_timeout: float) -> Iterator[LocalSlurm | ClusterUnavailable]:
    folder = Path(tempfile.mkdtemp(prefix="slurm-"))  # short: the munge socket's path must fit in 108 bytes
    tag = uuid.uuid4().hex
    starter = _Starter(folder, tag)
    try:
        folder.chmod(0o755)
        for sub in ("state", "spool"):
            (folder / sub).mkdir()
        key = folder / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        names = tuple(f"127.0.0.{index + 1}" for index in range(nodes))
        ports = free_ports(nodes + 1)
        conf = folder / "slurm.conf"
        conf.write_text(slurm_conf(folder, f"t{tag[:8]}", names, cpus, ports, random.randrange(10_000, 900_000)))
        cluster = LocalSlurm(folder, conf, names, tag, ())
        try:
            starter.start("munged", ["munged", "--foreground", "--force", f"--socket={folder / 'munge.socket'}",
                                     f"--key-file={key}", f"--pid-file={folder / 'munged.pid'}",
                                     f"--log-file={folder / 'munged.log'}", f"--seed-file={folder / 'munged.seed'}"])
            _wait_for_path(folder / "munge.socket", starter, start_timeout)
            starter.start("slurmctld", ["slurmctld", "-D", "-c", "-f", str(conf)])
            for node in names:
                starter.start(f"slurmd {node}", ["slurmd", "-D", "-N", node, "-f", str(conf)])
            cluster = LocalSlurm(folder, conf, names, tag, tuple(process.pid for _, process in starter.started))
            _wait_until_idle(cluster, starter, start_timeout)
        except ClusterUnavailable as unavailable:
            yield unavailable
            return
        try:
            yield cluster
        finally:
            _cancel_everything(cluster)
    finally:
        starter.stop()
        kill_tagged(tag)  # slurmstepd of a job that outlived its cancel
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for_path(path: Path, starter: _Starter, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        starter.check_alive()
        if time.monotonic() > deadline:
            raise ClusterUnavailable(f"{path.name} did not appear in {timeout} s\n{starter.logs('munged')}")
        time.sleep(0.02)


def _cancel_everything(cluster: LocalSlurm, timeout: float = 40) -> None:
    """Cancel the jobs still queued or running and wait (bounded) until the nodes let them go."""
    with contextlib.suppress(AssertionError, subprocess.SubprocessError):
        if cluster.queued():
            cluster.command(["scancel", "--full", "--partition", "debug"], check=False)
            deadline = time.monotonic() + timeout
            while cluster.queued() and time.monotonic() < deadline:
                time.sleep(0.1)
