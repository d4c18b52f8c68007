"""Run a LaunchPlan on torch.distributed.elastic and return a RunResult: the launcher's side.

Starts the forkserver that preloads torch, the reaper and the log dir (the
user's, or a private temp dir removed at the end), then hosts the agent
(``engine.run_agent``) where it costs least: in a child of that server
(``agent_host.py``), so that this process never imports torch; or here, when
workers are spawned or forked and no server exists.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import multiprocessing.util
import os
import shutil
import signal
import tempfile
import time
from typing import TYPE_CHECKING, Any

from launcher.reaper import Reaper

if TYPE_CHECKING:
    from launcher.plan import LaunchPlan
    from launcher.result import RunResult

PRELOAD = ["launcher.server_preload"]  # what the server imports before it forks: see that module


def start_worker_server_early(requested_method: str) -> None:
    """Start the server as soon as the command line is read, when the launch will most likely use it.

    Its torch import then overlaps everything the launcher still does (reading
    the job file, planning, preflight). The job file may still ask for another
    start method, or set a variable that needs spawn: ``start_worker_server``
    stops the server then, and a launch that does not happen stops it too.
    """
    from launcher.errors import LauncherError
    from launcher.platforms import choose_start_method, current_platform

    try:
        choice = choose_start_method(requested_method, current_platform(), {}, os.environ)
    except LauncherError:
        return  # the plan will say what is wrong
    if choice.method == "forkserver":
        _ensure_server(PRELOAD if choice.preload_torch else [])


def start_worker_server(plan: LaunchPlan) -> None:
    """Make sure the server the plan's workers come from runs (and that no other one does).

    The server reads the environment once, at start: what the workers need on
    top of it travels in their payload.
    """
    if plan.start.method != "forkserver":
        stop_worker_server()  # started early for a launch that turned out to spawn or fork
        return
    _ensure_server(PRELOAD if plan.start.preload_torch else [])


def _ensure_server(preload: list[str]) -> None:
    from multiprocessing import forkserver

    _keep_socket_paths_short()
    multiprocessing.get_context("forkserver").set_forkserver_preload(preload)
    forkserver.ensure_running()


SOCKET_PATH_MAX = 104  # bytes of an AF_UNIX path, NUL included: 108 on Linux, 104 on macOS and the BSDs
SYSTEM_TEMP_DIRS = ("/tmp", "/var/tmp", "/usr/tmp")


def _keep_socket_paths_short() -> None:
    """Put multiprocessing's temp dir, where the server's socket lives, under /tmp when TMPDIR is too long.

    The socket is ``$TMPDIR/pymp-XXXXXXXX/listener-XXXXXXXX``; a long TMPDIR (a
    scheduler's per-job scratch dir) makes it too long to bind ("AF_UNIX path
    too long"). Later CPython versions fall back to the system's temp dir the same way
    (cpython#132124). The reaper removes the folder if the launcher is killed.
    """
    from multiprocessing import process, util

    config = process.current_process()._config  # type: ignore[attr-defined]
    base = tempfile.gettempdir()
    if config.get("tempdir") is not None or len(base) + len("/pymp-12345678/listener-12345678") < SOCKET_PATH_MAX:
        return
    usable = [d for d in SYSTEM_TEMP_DIRS if os.path.isdir(d) and os.access(d, os.W_OK | os.X_OK)]
    if not usable:
        return  # nothing better: multiprocessing will say what went wrong
    folder = tempfile.mkdtemp(prefix="pymp-", dir=usable[0])
    util.Finalize(None, shutil.rmtree, args=(folder,), kwargs={"ignore_errors": True}, exitpriority=-100)
    config["tempdir"] = folder


def stop_worker_server() -> None:
    """Stop the forkserver now rather than let it outlive us holding our stdout.

    SIGKILL: the server holds no state, and its own interpreter shutdown (with
    torch loaded) would cost about 0.5 s. Workers forked from it have exited
    by now; any that had not would follow it through their parent-death signal.
    """
    from multiprocessing import forkserver

    server: Any = getattr(forkserver, "_forkserver", None)
    pid = getattr(server, "_forkserver_pid", None)
    if server is None or not pid:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(OSError):  # its socket may be gone with the temp dir
        server._stop()


def run_plan(plan: LaunchPlan) -> RunResult:
    """Start the workers of ``plan``, wait for them, and say how it went."""
    started = time.monotonic()
    start_worker_server(plan)
    reaper = Reaper()
    private_dir = None if plan.log_dir else tempfile.mkdtemp(prefix="launcher-")
    for folder in (private_dir, multiprocessing.util.get_temp_dir() if plan.start.method == "forkserver" else None):
        if folder is not None:  # removed by the reaper if this process is killed
            reaper.remove_if_abandoned(folder)
    log_dir = plan.log_dir or str(private_dir)
    try:
        if plan.start.agent_in_server:
            from launcher.agent_host import run_in_server

            result = run_in_server(plan, log_dir, reaper)
        else:
            from launcher.engine import run_agent

            result = run_agent(plan, log_dir, reaper)
    finally:
        reaper.close()
        stop_worker_server()
        if private_dir is not None:
            shutil.rmtree(private_dir, ignore_errors=True)
    return dataclasses.replace(result, wall_time=time.monotonic() - started)

