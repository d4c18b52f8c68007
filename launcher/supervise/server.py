"""The forkserver that preloads torch once, and that the agent and every worker fork from.

Started as soon as the command line is read (``start_worker_server_early``), so
that its torch import overlaps everything the launcher still does; kept, or
stopped, once the plan says how workers start (``start_worker_server``); and
stopped at the end (``stop_worker_server``). The folder of its socket is made
here, and the reaper hears of it before the server exists; stopping the server
removes it. Never imports torch in this process: the server does, through ``PRELOAD``.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.util
import os
import shutil
import tempfile
from typing import TYPE_CHECKING

from launcher import trace
from launcher.compat import mp

if TYPE_CHECKING:
    from launcher.plan.model import LaunchPlan
    from launcher.supervise.reaper import Reaper

PRELOAD = ["launcher.supervise.preload"]  # what the server imports before it forks: see that module
SOCKET_PATH_MAX = 104  # bytes of an AF_UNIX path, NUL included: 108 on Linux, 104 on macOS and the BSDs
SYSTEM_TEMP_DIRS = ("/tmp", "/var/tmp", "/usr/tmp")
_socket_dirs: list[str] = []  # the folder made for the running server's socket, removed when it stops


def start_worker_server_early(requested_method: str, reaper: Reaper) -> None:
    """Start the server as soon as the command line is read, when the launch will most likely use it.

    The job file may still ask for another start method, or set a variable that
    needs spawn: ``start_worker_server`` stops the server then, and a launch
    that does not happen stops it too.
    """
    from launcher.errors import LauncherError
    from launcher.platforms import choose_start_method, current_platform

    try:
        choice = choose_start_method(requested_method, current_platform(), {}, os.environ)
    except LauncherError:
        return  # the plan will say what is wrong
    if choice.method == "forkserver":
        trace.mark("launcher: start forkserver")
        _ensure_server(PRELOAD if choice.preload_torch else [], reaper)


def start_worker_server(plan: LaunchPlan, reaper: Reaper) -> None:
    """Make sure the server the plan's workers come from runs (and that no other one does).

    The server reads the environment once, at start: what the workers need on
    top of it travels in their payload.
    """
    if plan.start.method != "forkserver":
        stop_worker_server()  # started early for a launch that turned out to spawn or fork
        return
    _ensure_server(PRELOAD if plan.start.preload_torch else [], reaper)


def _ensure_server(preload: list[str], reaper: Reaper) -> None:
    from multiprocessing import forkserver

    if mp.forkserver_pid() is None:
        _make_socket_dir(reaper)
        reaper.remove_if_abandoned(server_temp_dir())  # made now if it was not: multiprocessing's own
    multiprocessing.get_context("forkserver").set_forkserver_preload(preload)
    forkserver.ensure_running()


def server_temp_dir() -> str:
    """multiprocessing's temp dir, where the server's socket lives (made now if it was not)."""
    return str(multiprocessing.util.get_temp_dir())


def _make_socket_dir(reaper: Reaper) -> None:
    """Make the folder of the server's socket here (multiprocessing's temp dir), under /tmp when TMPDIR is too long.

    The socket is ``$TMPDIR/pymp-XXXXXXXX/listener-XXXXXXXX``; a long TMPDIR (a
    scheduler's per-job scratch dir) makes it too long to bind ("AF_UNIX path
    too long"). Later CPython versions fall back to the system's temp dir the same way
    (cpython#132124). A folder multiprocessing chose already (the caller's, with
    the Python API) is used as it is.
    """
    if mp.temp_dir_chosen():
        return
    base = tempfile.gettempdir()
    if len(base) + len("/pymp-12345678/listener-12345678") >= SOCKET_PATH_MAX:
        usable = [d for d in SYSTEM_TEMP_DIRS if os.path.isdir(d) and os.access(d, os.W_OK | os.X_OK)]
        base = usable[0] if usable else base  # nothing better: multiprocessing will say what went wrong
    folder = reaper.make_temp_dir("pymp-", base)
    if not mp.use_temp_dir(folder):
        os.rmdir(folder)  # multiprocessing makes its own, and removes it at exit
        return
    _socket_dirs.append(folder)
    multiprocessing.util.Finalize(None, shutil.rmtree, args=(folder,), kwargs={"ignore_errors": True},
                                  exitpriority=-100)


def stop_worker_server() -> None:
    """Stop the forkserver now rather than let it outlive us holding our stdout.

    SIGKILL: the server holds no state, and its own interpreter shutdown (with
    torch loaded) would cost about 0.5 s. Workers forked from it have exited
    by now; any that had not would follow it through their parent-death signal.
    """
    mp.stop_forkserver()
    while _socket_dirs:
        shutil.rmtree(_socket_dirs.pop(), ignore_errors=True)
        mp.use_temp_dir(None)  # a later server gets a new one
