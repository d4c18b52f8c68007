"""What the launcher writes into a run folder beside the ranks' files: ``run.json``, ``events.jsonl``, ``checkpoints``.

Layout and schemas: ``docs/monitoring.md``. ``run.json`` is written at the
start (what runs, where, with which settings) and rewritten at the end with the
outcome; ``events.jsonl`` gets one JSON object a line (each one ``write`` to a
file opened for appending: the agent process appends the restarts, this one the
rest); ``checkpoints`` is a link to the job's checkpoint dir. Writing them never
fails a run: a folder that cannot be written loses its record, not the job.
Never imports torch.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from launcher.plan.model import LaunchPlan
from launcher.result import RankFailure, RunResult
from launcher.schema import as_tree

SCHEMA_VERSION = 1
RUN_FILE = "run.json"
EVENTS_FILE = "events.jsonl"
CHECKPOINTS_LINK = "checkpoints"


def append_event(folder: str, event: str, **fields: Any) -> None:
    """One line of ``events.jsonl``: ``{"time": ..., "event": ..., **fields}``."""
    line = json.dumps({"time": round(time.time(), 3), "event": event, **fields}, default=str) + "\n"
    with contextlib.suppress(OSError):
        fd = os.open(os.path.join(folder, EVENTS_FILE), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)


def record_start(folder: str, plan: LaunchPlan, started: float) -> None:
    """``run.json`` as the run starts, the ``start`` event, and the link to the checkpoint dir."""
    rendezvous = plan.rendezvous
    run = {
        "v": SCHEMA_VERSION,
        "run_id": rendezvous.run_id,
        "command": _command(sys.argv),
        "target": plan.target.describe(),
        "args": list(plan.target_args),
        "nprocs": plan.nprocs,
        "nnodes": rendezvous.max_nodes,
        "node_rank": rendezvous.node_rank,
        "backend": plan.backend,
        "started": round(started, 3),
        "checkpoint_dir": plan.config.checkpoint.dir,
        "settings": as_tree(plan.config),
    }
    _write_json(os.path.join(folder, RUN_FILE), run)
    append_event(folder, "start", nprocs=plan.nprocs, nnodes=rendezvous.max_nodes, target=plan.target.describe())
    checkpoints = plan.config.checkpoint.dir
    if checkpoints is not None:
        with contextlib.suppress(OSError, NotImplementedError):  # no symlinks (Windows without the privilege)
            os.symlink(os.path.abspath(checkpoints), os.path.join(folder, CHECKPOINTS_LINK), target_is_directory=True)


def record_failures(folder: str, failures: Sequence[RankFailure]) -> None:
    """A ``failure`` event for each rank that failed on its own (not those the launcher stopped for it)."""
    for failure in failures:
        if not failure.stopped_by_launcher:
            append_event(folder, "failure", rank=failure.rank, local_rank=failure.local_rank,
                         exit_code=failure.exitcode, signal=failure.signal, message=failure.message,
                         at=round(failure.timestamp, 3))


def record_end(folder: str, result: RunResult) -> None:
    """The failures, the hang and the ``exit`` event; ``run.json`` completed with the outcome."""
    record_failures(folder, result.failures)
    if result.hang is not None:
        append_event(folder, "hang", rank=result.hang.rank, idle=round(result.hang.idle, 3))
    outcome = {"exit_code": result.exit_code, "wall_time": round(result.wall_time, 3), "restarts": result.restarts,
               "world_size": result.world_size, "interrupted_by": result.interrupted_by}
    append_event(folder, "exit", **outcome)
    path = os.path.join(folder, RUN_FILE)
    try:
        with open(path) as handle:
            run = json.load(handle)
    except (OSError, ValueError):
        run = {"v": SCHEMA_VERSION}
    run.update(ended=round(time.time(), 3), **outcome)
    _write_json(path, run)


def _command(argv: list[str]) -> list[str]:
    """The command line as the user typed it: ``python -m launcher ...`` rather than the path of ``__main__.py``."""
    if argv and argv[0].endswith(os.path.join("launcher", "__main__.py")):
        return ["python", "-m", "launcher", *argv[1:]]
    return list(argv)


def _write_json(path: str, value: dict[str, Any]) -> None:
    """Written whole or not at all: a temporary file renamed over the old one."""
    partial = f"{path}.partial"
    with contextlib.suppress(OSError):
        with open(partial, "w") as handle:
            json.dump(value, handle, indent=1, default=str)
            handle.write("\n")
        os.replace(partial, path)
