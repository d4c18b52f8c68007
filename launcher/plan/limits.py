"""Open files and processes a launch of N local ranks needs, against this host's limits.

Open files, per process of the launch (measured on Linux with torch 2.13):
- the agent holds, per local rank, the rank's output FIFOs (2 on Linux, 4 elsewhere:
  ``supervise/output.py``), its log files (2, with a log dir), multiprocessing's two
  pipes to the worker, and the worker's connection to the agent's store (1), on top of
  about ``AGENT_BASE_FDS``: the most of any process, so the one that decides;
- the forkserver: one pipe per worker (its exit status), on top of its own few;
- the launcher: a few, whatever the number of ranks (the agent in a child of the server),
  or the agent's (the agent in the launcher process);
- a worker: a few, whatever the number of ranks (its two FIFOs, one pipe for its return
  value: ``launcher.returns``). What its own code and process group open (gloo connects
  to every other rank) is under the soft limit the user gave it, as under torchrun.
The forkserver and the agent raise their soft limit to the hard one (``launcher.rlimits``),
so a launch fits where the agent's count fits the hard limit.

Processes: the workers and the launcher's own (``LAUNCH_PROCESSES``), at least, not
counting threads: a launch is refused only where it cannot start, never where it might.
Refused: ``HostLimitError``, one line naming the number, the limit and the fix.
Pure: the limits come in with the host facts. Never imports torch.
"""

from __future__ import annotations

from launcher.errors import HostLimitError
from launcher.plan.model import LimitsPlan
from launcher.rlimits import HostLimits

AGENT_BASE_FDS = 32  # the agent's fds with no rank (about 24 measured: torch, the store, the router's loop)
PROCESS_FDS = 2  # multiprocessing's pipes to each worker, in the agent
STORE_FDS = 1  # each worker's connection to the agent's store
LOG_FDS = 2  # stdout.log, stderr.log
LAUNCH_PROCESSES = 5  # the launcher, the reaper, the resource tracker, the forkserver, the agent


def fifo_fds(platform: str) -> int:
    """The router's fds for one rank's two FIFOs: Linux reads and writes each through one fd."""
    return 2 if platform == "linux" else 4


def agent_open_files(nprocs: int, log_files: bool, platform: str) -> int:
    """About how many fds the agent holds with ``nprocs`` ranks running (``log_files``: a log dir)."""
    per_rank = fifo_fds(platform) + PROCESS_FDS + STORE_FDS + (LOG_FDS if log_files else 0)
    return AGENT_BASE_FDS + nprocs * per_rank


def plan_limits(nprocs: int, log_files: bool, platform: str, limits: HostLimits) -> LimitsPlan:
    """What the launch needs; ``HostLimitError`` where a hard limit of this host cannot hold it."""
    open_files = agent_open_files(nprocs, log_files, platform)
    hard = limits.open_files_hard
    if hard is not None and open_files > hard:
        per_rank = (open_files - AGENT_BASE_FDS) // nprocs
        most = max(0, (hard - AGENT_BASE_FDS) // per_rank)
        raise HostLimitError(
            f"world.nprocs: {nprocs} local processes need about {open_files} open files in the launcher's agent, "
            f"above this host's hard limit of {hard}",
            f"raise it, e.g. ulimit -Hn {open_files} as root or nofile in /etc/security/limits.conf, "
            f"or run at most {most} processes per node")
    processes = nprocs + LAUNCH_PROCESSES
    for room, limit, fix in _process_limits(limits, processes):
        if processes > room:
            raise HostLimitError(
                f"world.nprocs: {nprocs} local processes and the launcher's own {LAUNCH_PROCESSES} exceed {limit}",
                f"{fix}, or run at most {max(0, room - LAUNCH_PROCESSES)} processes per node")
    return LimitsPlan(open_files, processes, limits.open_files_soft, hard)


def _process_limits(limits: HostLimits, processes: int) -> list[tuple[int, str, str]]:
    """For each known limit: (processes that may still start, the limit in words, the fix for ``processes``)."""
    found = []
    if limits.user_processes is not None:
        found.append((limits.user_processes, f"the {limits.user_processes} processes this user may run (ulimit -u)",
                      f"raise it, e.g. ulimit -u {processes} or nproc in /etc/security/limits.conf, plus what "
                      "you already run"))
    if limits.cgroup_pids_max is not None:
        running = limits.cgroup_pids_current or 0
        found.append((limits.cgroup_pids_max - running,
                      f"the {limits.cgroup_pids_max} tasks this cgroup allows (pids.max, {running} running)",
                      f"raise the container's pids limit to {running + processes} or more "
                      "(docker --pids-limit, the pod's pid limit)"))
    running = limits.tasks_running or 0
    for value, name in ((limits.pid_max, "kernel.pid_max"), (limits.threads_max, "kernel.threads-max")):
        if value is not None:
            found.append((value - running, f"the {value} tasks of {name} ({running} running)",
                          f"raise it, e.g. sysctl -w {name}={running + processes}"))
    return found
