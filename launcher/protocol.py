"""The contract between the launcher and its workers: everything that crosses from one to the other.

- ``WorkerPayload``: what a worker needs besides elastic's rank environment
  (pickled to it by elastic, so plain data only).
- The rank's folder, the one holding ``TORCHELASTIC_ERROR_FILE``: the launcher
  creates the output FIFOs there (``PIPE_NAMES``; the worker removes each once it
  opened it, the launcher those of a rank that never did) and reads the progress file
  (``PROGRESS_FILE``) that the worker's heartbeat touches.
- The stacks file (``STACKS_FILE``, with the hang watchdog on): faulthandler
  writes every thread's stack there on SIGUSR1, after a first line naming the
  main thread (``main_thread_header``/``main_thread_ident``).
- Save and stop (``checkpoint.stop_signal``): the launcher passes the request
  on to its agent process with ``AGENT_SAVE_SIGNAL`` (never to a worker: there
  SIGUSR1 asks faulthandler for the stacks); the agent sets
  ``SAVE_AND_STOP_KEY`` in the job's c10d store, which the ranks of every node
  reach; rank 0's checkpointer sees it, every rank saves at the step rank 0
  names, and rank 0 sets ``STOPPED_KEY`` to that step once the checkpoint is
  complete, before the ranks exit 0. The agent reads it to tell such a stop
  from a job that ended.
- The metrics (``metrics_file``): each rank's monitor appends one JSON line per
  interval to ``<run folder>/metrics/rank_<RANK>.jsonl``, the run folder being
  the one above ``attempt_<n>/<local rank>/`` (schema: ``docs/monitoring.md``);
  the launcher reads them for the progress line and the straggler view.
- The error file: elastic's layout, ``{"message": {"message": ..., "extraInfo":
  {"py_callstack": ..., "timestamp": ...}}}``, plus ``extraInfo.time``, when the
  exception was raised (seconds since the epoch, sub-second): the root cause is
  the earliest of them. ``write_error_file`` (worker) and ``read_error_file``
  (launcher) are its only writer and reader.

Standard library only; imported by both sides.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from launcher.schema import JobConfig
from launcher.targets import Target

ERROR_FILE_VARIABLE = "TORCHELASTIC_ERROR_FILE"  # set by elastic for every worker
PROGRESS_FILE = "progress"  # touched by the worker's heartbeat when the rank made progress
PIPE_NAMES = {"stdout": "stdout.pipe", "stderr": "stderr.pipe"}  # FIFOs the launcher reads
METRICS_FOLDER = "metrics"  # in the run folder: one metrics/rank_<R>.jsonl per rank (``metrics_file``)
STACKS_FILE = "stacks.txt"  # every thread's Python stack, each time the hang watchdog asks (SIGUSR1)
AGENT_SAVE_SIGNAL = "SIGUSR1"  # launcher → its agent process: the user asked to save and stop
SAVE_AND_STOP_KEY = "launcher/save_and_stop"  # agent → ranks, in the job's store: save at the next maybe_save, stop
STOPPED_KEY = "launcher/stopped_after_checkpoint"  # rank 0 → agent: the step of the complete checkpoint it stopped at


@dataclass(frozen=True)
class WorkerPayload:
    """Everything a worker needs besides its rank environment; picklable under spawn."""

    target: Target
    args: tuple[str, ...]
    config: JobConfig
    backend: str  # the plan's choice ("nccl" or "gloo"): ``init()`` uses it
    start_method: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # on top of elastic's rank variables
    open_files_limit: int | None = None  # the user's soft limit: the launcher's processes raised theirs


def rank_dir(environ: Mapping[str, str]) -> str | None:
    """The folder the launcher made for this rank (next to its error file), or None outside the launcher."""
    return os.path.dirname(environ.get(ERROR_FILE_VARIABLE, "")) or None


def metrics_file(environ: Mapping[str, str]) -> str | None:
    """Where this rank's monitor writes (``<run folder>/metrics/rank_<RANK>.jsonl``), or None outside the launcher."""
    folder = rank_dir(environ)
    if folder is None or "RANK" not in environ:
        return None
    run_folder = os.path.dirname(os.path.dirname(folder))
    return os.path.join(run_folder, METRICS_FOLDER, f"rank_{environ['RANK']}.jsonl")


def main_thread_header(ident: int) -> str:
    """The stacks file's first line: the worker's main thread, as faulthandler's dumps name threads."""
    return f"main thread 0x{ident:016x}\n"


def main_thread_ident(header: str) -> int | None:
    """The main thread a stacks file's first line names, or None."""
    name, _, ident = header.strip().rpartition(" 0x")
    try:
        return int(ident, 16) if name == "main thread" else None
    except ValueError:
        return None


@dataclass(frozen=True)
class RaisedError:
    """What a rank's error file says: the exception, its traceback, and when it was raised."""

    message: str | None = None  # "ValueError: bad input"
    traceback: str | None = None
    time: float | None = None  # seconds since the epoch; None in files written by others (elastic's @record)


def write_error_file(path: str, error: RaisedError) -> None:
    """Write the error file whole or not at all (the rank may be killed while writing)."""
    when = error.time or 0.0
    data = {"message": {"message": error.message, "extraInfo": {
        "py_callstack": error.traceback, "timestamp": str(int(when)), "time": when}}}
    partial = f"{path}.partial"
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    os.replace(partial, path)


def read_error_file(data: Any) -> RaisedError:
    """The error file as parsed JSON (elastic's ``ProcessFailure.error_file_data``) → ``RaisedError``.

    Accepts what elastic writes too: the message as a JSON string, or its
    placeholders when no file was written. Anything else gives an empty record.
    """
    if not isinstance(data, dict) or "message" not in data:
        return RaisedError()
    body = data["message"]
    if body in ("<NONE>", "<N/A>", None):  # elastic's placeholders when no error file was written
        return RaisedError()
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return RaisedError(message=body)
    if not isinstance(body, dict):
        return RaisedError(message=str(body))
    extra = body.get("extraInfo") or {}
    if not isinstance(extra, dict):
        extra = {}
    raised_at = extra.get("time")
    try:
        when = float(raised_at) if raised_at else None
    except (TypeError, ValueError):
        when = None
    message, trace = body.get("message"), extra.get("py_callstack")
    return RaisedError(message=str(message) if message is not None else None,
                       traceback=str(trace) if trace is not None else None, time=when)
