"""Run a LaunchPlan on torch.distributed.elastic and return a RunResult: the launcher's side.

Starts the forkserver that preloads torch (``server.py``), the reaper and the
log dir (the user's, or a private temp dir removed at the end), then hosts the
agent (``engine.run_agent``) where the plan placed it: in a child of that server
(``agent_process.py``), so that this process never imports torch; or here.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time

from launcher import trace
from launcher.plan.model import LaunchPlan
from launcher.result import RunResult
from launcher.supervise.reaper import Reaper
from launcher.supervise.run_folder import make_run_folder
from launcher.supervise.server import server_temp_dir, start_worker_server, stop_worker_server


def run_plan(plan: LaunchPlan) -> RunResult:
    """Start the workers of ``plan``, wait for them, and say how it went."""
    trace.mark("launcher: run_plan start")
    started = time.monotonic()
    start_worker_server(plan)
    reaper = Reaper()
    private_dir = None if plan.log_dir else tempfile.mkdtemp(prefix="launcher-")
    for folder in (private_dir, server_temp_dir() if plan.start.method == "forkserver" else None):
        if folder is not None:  # removed by the reaper if this process is killed
            reaper.remove_if_abandoned(folder)
    log_dir = str(private_dir)
    try:
        if plan.log_dir:  # each run in a folder of its own there: another run's files are never touched
            log_dir = make_run_folder(plan.log_dir, plan.rendezvous.run_id, time.time())
        if plan.agent.in_server:
            from launcher.supervise.agent_process import run_in_server

            result = run_in_server(plan, log_dir, reaper)
        else:
            from launcher.supervise.engine import run_agent

            result = run_agent(plan, log_dir, reaper)
    finally:
        reaper.close()
        stop_worker_server()
        if private_dir is not None:
            shutil.rmtree(private_dir, ignore_errors=True)
    trace.mark("launcher: run_plan end")
    return dataclasses.replace(result, wall_time=time.monotonic() - started, log_dir=plan.log_dir and log_dir)
