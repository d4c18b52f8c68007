"""The last lines of every run, success or not: what a function job returned, then one line with the ranks, the
wall time, the restarts, the exit code and where the logs are; first, where the metrics, events and checkpoints are.

Rendered here alone, from the ``RunResult``, so that what a run leaves elsewhere (metrics, checkpoints) is added in
one place. Printed by the CLI on stderr (a script's stdout stays its own). Never imports torch.
"""

from __future__ import annotations

import os
import reprlib
import shlex
from collections.abc import Mapping
from typing import Any

from launcher.protocol import METRICS_FOLDER
from launcher.result import RunResult
from launcher.supervise.run_record import EVENTS_FILE

SHOWN_RANKS = 8  # values of ranks that returned different things, at most


def _short_repr() -> reprlib.Repr:
    """Python 3.10's ``Repr`` takes no arguments: its limits are set on the instance."""
    short = reprlib.Repr()
    short.maxstring = short.maxother = 60
    short.maxlist = short.maxtuple = short.maxdict = short.maxset = 6
    return short


_SHORT = _short_repr()


def end_of_run(result: RunResult, checkpoint_dir: str | None = None) -> list[str]:
    """What the run folder holds, the return values (when a rank returned something), then the end line."""
    returned = returned_line(result.return_values, result.world_size)
    where = run_folder_line(result.log_dir, checkpoint_dir)
    return ([where] if where else []) + ([returned] if returned else []) + [end_line(result)]


def run_folder_line(folder: str | None, checkpoint_dir: str | None) -> str | None:
    """``launcher: metrics and events in the run folder (python -m launcher report F); checkpoints in C``."""
    kept = [name for name, entry in (("metrics", METRICS_FOLDER), ("events", EVENTS_FILE))
            if folder and os.path.exists(os.path.join(folder, entry))]
    text = ""
    if folder and kept:
        text = f"{' and '.join(kept)} in the run folder (a picture: python -m launcher report {shlex.quote(folder)})"
    if checkpoint_dir:
        text += f"{'; ' if text else ''}checkpoints in {checkpoint_dir}"
    return f"launcher: {text}" if text else None


def end_line(result: RunResult) -> str:
    """``launcher: 4 ranks finished in 12.3 s after 1 restart; logs in runs/exp1/...``."""
    finished = result.ok and result.stopped_after_checkpoint is None
    if finished:
        verb = "finished in"
    elif result.interrupted_by is not None:
        verb = f"stopped by {result.interrupted_by} after"
    elif result.hang is not None:
        verb = "stopped by the hang watchdog after"
    elif result.ok:  # stopped after a checkpoint, as asked: the line before says so
        verb = "stopped after"
    else:
        verb = "failed after"
    text = f"launcher: {_ranks(result)} {verb} {duration(result.wall_time)}"
    if result.restarts:
        plural = "s" if result.restarts > 1 else ""
        text += f" {'after' if finished else 'and'} {result.restarts} restart{plural}"
    if result.exit_code:
        text += f", exit code {result.exit_code}"
    if result.log_dir:
        folders = f" (attempt_0 to attempt_{result.restarts})" if result.restarts else ""
        text += f"; logs in {result.log_dir}{folders}"
    return text


def returned_line(values: Mapping[int, Any], world_size: int) -> str | None:
    """What the ranks returned, shortened: once when every rank returned the same; None when none returned a value."""
    if all(value is None for value in values.values()):
        return None
    ranks = sorted(values)
    if len(ranks) == 1:
        return f"launcher: rank {ranks[0]} returned {_SHORT.repr(values[ranks[0]])}"
    first = values[ranks[0]]
    if all(_same(values[rank], first) for rank in ranks[1:]):
        who = f"all {len(ranks)} ranks" if len(ranks) == world_size else f"the {len(ranks)} ranks of this node"
        return f"launcher: {who} returned {_SHORT.repr(first)}"
    shown = ", ".join(f"rank {rank} returned {_SHORT.repr(values[rank])}" for rank in ranks[:SHOWN_RANKS])
    more = f", and {len(ranks) - SHOWN_RANKS} more ranks" if len(ranks) > SHOWN_RANKS else ""
    return f"launcher: {shown}{more}"


def duration(seconds: float) -> str:
    """``12.3 s``, ``4 min 05 s``, ``2 h 03 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def _ranks(result: RunResult) -> str:
    if not result.world_size:  # stopped before the ranks were placed
        return "the job"
    ranks = f"{result.world_size} rank{'s' if result.world_size > 1 else ''}"
    return f"{ranks} on {result.nodes} nodes" if result.nodes > 1 else ranks


def _same(value: Any, other: Any) -> bool:
    """Equal as Python sees it; a value without a plain truth (a tensor, an array) is never called the same."""
    if value is other:
        return True
    if type(value) is not type(other):
        return False
    try:
        return bool(value == other)
    except Exception:
        return False
