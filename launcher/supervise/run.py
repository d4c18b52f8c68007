"""Run a LaunchPlan on torch.distributed.elastic and return a RunResult: the launcher's side.

Starts the reaper (unless the command line did, before its early server), the
forkserver that preloads torch (``server.py``) and the log dir (the user's, or a
private temp dir removed at the end; a run folder of the user's gets ``run.json`` and
``events.jsonl``: ``run_record.py``), then hosts the agent (``engine.run_agent``)
where the plan placed it: in a child of that server (``agent_process.py``), so
that this process never imports torch; or here. At the end it stops the server
and removes its temporary folders; the reaper, which would have done it had this
process been killed, is stopped last, by whoever started it.
"""

from __future__ import annotations

import dataclasses
import shutil
import time

from launcher import trace
from launcher.plan.model import LaunchPlan
from launcher.result import RunResult, signal_number
from launcher.supervise.reaper import Reaper
from launcher.supervise.run_folder import make_run_folder
from launcher.supervise.run_record import record_end, record_start
from launcher.supervise.save_stop import SaveAndStop
from launcher.supervise.server import start_worker_server, stop_worker_server


def run_plan(plan: LaunchPlan, reaper: Reaper | None = None) -> RunResult:
    """Start the workers of ``plan``, wait for them, and say how it went.

    ``reaper``: the one started before anything else of this launch (the caller stops it); else one of its own.
    """
    if reaper is None:
        reaper = Reaper()
        try:
            return run_plan(plan, reaper)
        finally:
            reaper.close()
    trace.mark("launcher: run_plan start")
    started = time.monotonic()
    start_worker_server(plan, reaper)
    private_dir = None if plan.log_dir else reaper.make_temp_dir("launcher-")  # the reaper's if we are killed
    log_dir = str(private_dir)
    try:
        if plan.log_dir:  # each run in a folder of its own there: another run's files are never touched
            log_dir = make_run_folder(plan.log_dir, plan.rendezvous.run_id, time.time())
            record_start(log_dir, plan, time.time())
        if plan.agent.in_server:
            from launcher.supervise.agent_process import run_in_server

            result = run_in_server(plan, log_dir, reaper)
        else:
            from launcher.supervise.engine import run_agent_here

            save_stop = SaveAndStop(plan.stop.save_signal)
            with save_stop.receiving(signal_number(plan.stop.save_signal)):
                result = run_agent_here(plan, log_dir, _NoWatcher(), save_stop)
    finally:
        stop_worker_server()
        if private_dir is not None:
            shutil.rmtree(private_dir, ignore_errors=True)
    trace.mark("launcher: run_plan end")
    result = dataclasses.replace(result, wall_time=time.monotonic() - started, log_dir=plan.log_dir and log_dir)
    if plan.log_dir:
        record_end(log_dir, result)
    return result


class _NoWatcher:
    """The agent in this process: nobody to tell worker pids (the reaper finds the processes by their tag)."""

    def watch(self, pids: list[int]) -> None:
        pass
