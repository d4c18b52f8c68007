"""The reaper: a tiny process (no torch) that cleans up after a launcher that was killed, even by SIGKILL.

The launcher starts it before anything else of a launch (``Reaper``), in a process
group of its own, so that it survives a SIGKILL of the launcher's whole group
(``kill -9 -PGID``, as CI runners and schedulers stop a job). From then on every
process the launch starts carries the reaper's tag in its environment
(``descendants.JOB_TAG_VARIABLE``: the forkserver, the agent, the workers and
whatever they start), and the launcher writes to the reaper's stdin each
temporary folder as soon as it made it, and the agent's pid.

When stdin reaches EOF the launcher died (one that finishes kills the reaper
first: it holds no state then). The reaper gives the agent the plan's grace
period to stop its workers and clean up (its parent's death signals it), kills
every process that carries the tag, with the process group each leads, until
none is left (a daemon a rank started, whatever left its group or session and
kept its environment), and removes the folders, so that nothing stays in TMPDIR.
It ignores SIGINT, SIGTERM and SIGHUP, which are the launcher's to handle.

Run as ``python -m launcher.supervise.reaper TAG``; ``Reaper`` is the launcher's handle.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from launcher.supervise.descendants import JOB_TAG_VARIABLE, stop_tagged
from launcher.supervise.descendants import KILL as KILL  # with signal_group, for the agent's modules

SWEEP_LIMIT = 10.0  # seconds: the longest the reaper kills processes that keep starting others
LAUNCHER_GONE = getattr(signal, "SIGUSR2", None)  # to the agent: stop the workers, quietly (agent_process.py)


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal a worker's process group (it leads one), or the worker alone where groups do not exist."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if hasattr(os, "killpg"):
            try:
                os.killpg(pid, sig)
                return
            except ProcessLookupError:
                pass  # the group is gone (or not formed yet): the process itself may remain
        os.kill(pid, sig)


def main(argv: list[str]) -> None:
    tag = argv[0]
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    folders: list[str] = []
    agent: tuple[int, float] | None = None
    for raw in sys.stdin.buffer:  # until EOF: the launcher died
        kind, _, value = raw.decode("utf-8", "surrogateescape").rstrip("\n").partition(" ")
        if kind == "dir" and value:
            folders.append(value)
        elif kind == "agent":
            pid, _, grace = value.partition(" ")
            agent = int(pid), float(grace)
    if agent is not None:
        _let_finish(*agent, tag)
    stop_tagged(tag, SWEEP_LIMIT)
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def _let_finish(pid: int, grace: float, tag: str) -> None:
    """Tell the agent that the launcher is gone, and give it the time to stop its workers and remove what it made."""
    import psutil

    if LAUNCHER_GONE is None:
        return
    try:
        agent = psutil.Process(pid)
        if agent.environ().get(JOB_TAG_VARIABLE) != tag:
            return  # not the agent any more: its pid was reused
        agent.send_signal(LAUNCHER_GONE)  # it may know already: its parent, the server, may have died too
        agent.wait(timeout=grace + 2)
    except (psutil.Error, OSError):
        return


class Reaper:
    """The launcher's side: start the reaper, tag every process started from now on, tell it each folder.

    The tag lives in this process's environment until ``close`` (which restores it).
    The resource tracker starts before it, untagged and in a process group of its own,
    so that it outlives the tagged processes and removes the semaphores they leave.
    """

    def __init__(self) -> None:
        from launcher.compat import mp

        self.tag = os.urandom(8).hex()
        self._process = _start_in_own_group([sys.executable, "-m", "launcher.supervise.reaper", self.tag])
        mp.start_resource_tracker()
        self._previous = os.environ.get(JOB_TAG_VARIABLE)
        os.environ[JOB_TAG_VARIABLE] = self.tag

    def make_temp_dir(self, prefix: str, base: str | None = None) -> str:
        """``tempfile.mkdtemp``, but the reaper hears of the folder before it exists: a SIGKILL at any moment leaves
        nothing. (It would remove another's folder only if a random name collided and the launcher were killed
        between that name and ``mkdir``'s refusal.)"""
        while True:
            folder = os.path.join(base or tempfile.gettempdir(), f"{prefix}{os.urandom(4).hex()}")
            self.remove_if_abandoned(folder)
            try:
                os.mkdir(folder, 0o700)
                return folder
            except FileExistsError:
                continue

    def remove_if_abandoned(self, folder: str) -> None:
        """A temporary folder to remove if the launcher dies before it could."""
        self._send(f"dir {folder}")

    def watch_agent(self, pid: int, grace: float) -> None:
        """The agent's process: given ``grace`` seconds to stop its workers if the launcher dies."""
        self._send(f"agent {pid} {grace}")

    def _send(self, line: str) -> None:
        assert self._process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self._process.stdin.write(f"{line}\n".encode("utf-8", "surrogateescape"))
            self._process.stdin.flush()

    def close(self) -> None:
        """The launch is over and cleaned up: stop the reaper, untag what this process starts next."""
        with contextlib.suppress(ProcessLookupError):
            self._process.send_signal(KILL)
        self._process.wait()
        assert self._process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self._process.stdin.close()
        if self._previous is None:
            os.environ.pop(JOB_TAG_VARIABLE, None)
        else:
            os.environ[JOB_TAG_VARIABLE] = self._previous


def _start_in_own_group(command: list[str]) -> subprocess.Popen[bytes]:
    """Start ``command`` in a process group of its own, its stdin a pipe from here (Popen does not wait for it)."""
    if sys.version_info >= (3, 11):  # a group of its own keeps vfork; a new session costs ~4 ms of fork here
        return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, process_group=0)
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, start_new_session=True)


if __name__ == "__main__":
    main(sys.argv[1:])
