"""CPython's private multiprocessing, forkserver and atexit internals, behind one probe.

What the launcher uses, and the tested path it falls back to where ``probe()`` finds it missing:

- The agent, forked from the torch-preloaded server, asks that same server for the
  workers (``use_parent_server``): a forkserver child has the server's address and
  liveness pipe (``ForkServer._forkserver_address``, ``_forkserver_alive_fd``) but no
  pid, and ``ensure_running`` is replaced on the instance so that it does not start a
  second server. Python 3.14 authenticates the server's socket with a key that only
  the process that started the server holds (``_forkserver_authkey``; a forkserver
  child has none, and the server drops its request). Fallback: the agent runs in the
  launcher process, which imports torch (``problems.agent_in_server``).
- A worker forked from the server drops the server's atexit handlers and runs the
  user's own before it ends in ``os._exit`` (``atexit._clear``, ``atexit._run_exitfuncs``).
  Fallback: workers are spawned (``problems.forked_workers``).
- A worker closes its copy of the server's liveness pipe (``release_server_pipe``), so
  that the server, and through their parent-death signal the workers, see the launcher
  die. Fallback: the reaper alone stops the workers then (``problems.server_pipe``).
- The launcher stops the server when the run ends (``stop_forkserver``: its pid and
  ``_stop``) and runs multiprocessing's exit function before ``os._exit``
  (``run_exit_function``). Fallback: the interpreter's normal shutdown (slower).
- The resource tracker starts in a process group of its own (``start_resource_tracker``: the
  tracker's ``util.spawnv_passfds`` is replaced for that call), so that a SIGKILL of the
  launcher's group leaves it alive to remove the semaphores of the processes killed with
  it. Fallback: it starts in the launcher's group (``problems.tracker_group``).
- A worker forked by the agent (the fork start method) closes the pipes multiprocessing keeps
  for each worker forked before it (``sibling_pipes_closed``: ``process._children``, and the
  fds each one's ``Popen.finalizer`` would close, ``util.close_fds``): else worker N holds 2N
  fds of its siblings. Fallback: it keeps them (``problems.sibling_pipes``).
- The server's socket folder is the launcher's own, made before the server starts (under /tmp
  when TMPDIR is too long for a socket path), so that the reaper knows it from the start and the
  launcher removes it when it stops the server (``use_temp_dir``: ``current_process()._config["tempdir"]``).
  Fallback: multiprocessing's own choice, made when the server starts and removed at exit.

Standard library only: the launcher probes before it plans, without torch.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing import forkserver, process, resource_tracker, util
from typing import Any


@dataclass(frozen=True)
class Problems:
    """What this Python lacks, per feature: None where the feature works, else why not."""

    agent_in_server: str | None = None
    forked_workers: str | None = None
    server_pipe: str | None = None
    server_control: str | None = None
    temp_dir: str | None = None
    tracker_group: str | None = None
    sibling_pipes: str | None = None

    def notes(self) -> tuple[str, ...]:
        """One line per missing feature and its fallback, for the plan."""
        fallbacks = {
            "agent_in_server": "the agent runs in the launcher process",
            "forked_workers": "workers are spawned",
            "server_pipe": "only the reaper stops workers whose launcher died",
            "server_control": "the launcher exits through the interpreter's normal shutdown",
            "temp_dir": "a long TMPDIR is used as it is",
            "tracker_group": "a SIGKILL of the launcher's process group may leave semaphores in /dev/shm",
            "sibling_pipes": "under fork, each worker keeps two pipes of every worker forked before it",
        }
        return tuple(f"{problem}: {fallbacks[name]}" for name, problem in vars(self).items() if problem)


def _missing(owner: Any, names: tuple[str, ...], where: str) -> str | None:
    absent = [name for name in names if not hasattr(owner, name)]
    return f"{where} has no {', '.join(absent)}" if absent else None


@functools.cache
def probe() -> Problems:
    """Check every internal this module uses, on this Python (cached: the answer does not change)."""
    server = getattr(forkserver, "_forkserver", None)
    server_attrs = ("_forkserver_address", "_forkserver_alive_fd", "_forkserver_pid", "ensure_running", "_stop")
    server_problem = ("multiprocessing.forkserver has no server object" if server is None
                      else _missing(server, server_attrs, "multiprocessing's ForkServer"))
    agent_problem = server_problem
    if agent_problem is None and hasattr(server, "_forkserver_authkey"):
        agent_problem = ("this Python authenticates the forkserver's socket (3.14+), and a process the "
                         "server forked has no key to ask it for more")
    config = getattr(process.current_process(), "_config", None)
    return Problems(
        agent_in_server=agent_problem,
        forked_workers=_missing(atexit, ("_clear", "_run_exitfuncs"), "atexit"),
        server_pipe=server_problem,
        server_control=server_problem or _missing(util, ("_exit_function",), "multiprocessing.util"),
        temp_dir=None if isinstance(config, dict) else "multiprocessing's process has no _config",
        tracker_group=_missing(util, ("spawnv_passfds",), "multiprocessing.util"),
        sibling_pipes=_sibling_pipes_problem(),
    )


def _sibling_pipes_problem() -> str | None:
    from multiprocessing import popen_fork

    launch = getattr(getattr(popen_fork, "Popen", None), "_launch", None)
    init = getattr(util.Finalize, "__init__", None)
    if not hasattr(process, "_children") or not hasattr(util, "close_fds"):
        return "multiprocessing has no process._children or util.close_fds"
    if "finalizer" not in getattr(getattr(launch, "__code__", None), "co_names", ()):
        return "multiprocessing's fork Popen keeps no finalizer"
    if "_args" not in getattr(getattr(init, "__code__", None), "co_names", ()):
        return "multiprocessing's Finalize keeps no _args"
    return None


# -- the launcher ------------------------------------------------------------------------------------

_trackers: list[subprocess.Popen[bytes]] = []  # kept: a collected running Popen would be reaped by subprocess


def start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker now, in a process group of its own (a session on 3.10).

    Out of the launcher's group, it outlives a SIGKILL of that group and removes
    what the processes killed with it registered (their semaphores in /dev/shm).
    """
    if probe().tracker_group is not None:
        resource_tracker.ensure_running()
        return

    def spawn_in_own_group(path: Any, args: Any, passfds: Sequence[int]) -> int:  # as util.spawnv_passfds
        own_group: dict[str, Any] = (
            {"process_group": 0} if sys.version_info >= (3, 11) else {"start_new_session": True})
        tracker = subprocess.Popen(args, executable=path, pass_fds=sorted(passfds), **own_group)
        _trackers.append(tracker)
        return tracker.pid

    spawn = util.spawnv_passfds
    util.spawnv_passfds = spawn_in_own_group  # what ResourceTracker.ensure_running calls
    try:
        resource_tracker.ensure_running()
    finally:
        util.spawnv_passfds = spawn


# -- the agent, forked from the server --------------------------------------------------------------


def use_parent_server() -> None:
    """In a process forked by the forkserver: ask that server for new processes, never start another.

    The resource tracker it shares stays checked. Raises ``RuntimeError`` when this
    process was not forked by a forkserver (or this Python does not allow it: ``probe``).
    """
    problem = probe().agent_in_server
    if problem is not None:
        raise RuntimeError(f"the agent cannot use the launcher's forkserver: {problem}")
    server: Any = forkserver._forkserver  # type: ignore[attr-defined]
    if server._forkserver_address is None or server._forkserver_alive_fd is None:
        raise RuntimeError("this process was not forked by the launcher's forkserver")
    server.ensure_running = resource_tracker.ensure_running
    _parent_server.append(os.getppid())


_parent_server: list[int] = []  # set by use_parent_server


def parent_server_pid() -> int | None:
    """In a process ``use_parent_server`` set up: the server that forked it (and forks its workers); else None."""
    return _parent_server[-1] if _parent_server else None


_starting_workers: list[bool] = []  # not empty while sibling_pipes_closed is in effect
_hook_installed: list[bool] = []


@contextlib.contextmanager
def sibling_pipes_closed() -> Iterator[None]:
    """In the block, a process forked from this one closes the pipes this one keeps for its other children."""
    if probe().sibling_pipes is not None or not hasattr(os, "register_at_fork"):
        yield
        return
    if not _hook_installed:
        os.register_at_fork(after_in_child=_close_sibling_pipes)
        _hook_installed.append(True)
    _starting_workers.append(True)
    try:
        yield
    finally:
        _starting_workers.pop()


def _close_sibling_pipes() -> None:
    if not _starting_workers:
        return
    _starting_workers.clear()  # this child forks its own children as it likes
    for sibling in list(process._children):  # type: ignore[attr-defined]
        finalizer = getattr(getattr(sibling, "_popen", None), "finalizer", None)
        if getattr(finalizer, "_callback", None) is util.close_fds:  # type: ignore[attr-defined]  # not run yet
            for fd in finalizer._args:  # type: ignore[union-attr]
                with contextlib.suppress(OSError):
                    os.close(fd)


# -- workers forked from the server ------------------------------------------------------------------


def clear_inherited_atexit() -> None:
    """Drop the atexit handlers a forked process inherited (they belong to its parent)."""
    atexit._clear()  # type: ignore[attr-defined]


def run_atexit() -> None:
    """Run (and clear) the atexit handlers now: a forked process ends in ``os._exit``, which skips them."""
    atexit._run_exitfuncs()  # type: ignore[attr-defined]


def release_server_pipe() -> None:
    """Close this process's copy of the forkserver's liveness pipe (every forked child inherits one).

    Held in a worker, it would keep the server from seeing the launcher die. A
    worker that uses forkserver itself then starts a fresh server, with a pipe of its own.
    """
    if probe().server_pipe is not None:
        return
    server: Any = forkserver._forkserver  # type: ignore[attr-defined]
    fd = server._forkserver_alive_fd
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
        server._forkserver_alive_fd = None


# -- the launcher ------------------------------------------------------------------------------------


def forkserver_pid() -> int | None:
    """The pid of the forkserver this process started, or None."""
    if probe().server_control is not None:
        return None
    pid = forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined]
    return int(pid) if pid else None


def stop_forkserver() -> None:
    """SIGKILL the forkserver this process started, and forget it (a later start makes a new one)."""
    pid = forkserver_pid()
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(OSError):  # its socket may be gone with the temp dir
        forkserver._forkserver._stop()  # type: ignore[attr-defined]


def run_exit_function() -> bool:
    """Run multiprocessing's exit function (finalizers, children) now; False where it cannot."""
    if probe().server_control is not None:
        return False
    util._exit_function()  # type: ignore[attr-defined]
    return True


def temp_dir_chosen() -> bool:
    """Whether multiprocessing has chosen its temp dir (where the forkserver's socket lives) already."""
    config = getattr(process.current_process(), "_config", None)
    return not isinstance(config, dict) or config.get("tempdir") is not None


def use_temp_dir(folder: str | None) -> bool:
    """Make ``folder`` multiprocessing's temp dir (None: it makes a new one when next needed); False where this
    Python does not allow it."""
    if probe().temp_dir is not None:
        return False
    process.current_process()._config["tempdir"] = folder  # type: ignore[attr-defined]
    return True
