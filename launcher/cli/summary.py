"""The run's summary on stderr: on failure the root cause first, then the consequences; first of all, if the
console's reader went away (``| head``), one line that says so; last, for every run, the end of the run
(``end_of_run.py``).

Never imports torch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TextIO

from launcher.cli.end_of_run import end_of_run
from launcher.cli.script_usage import script_usage_hint
from launcher.hints import known_error_hints
from launcher.result import Hang, RankFailure, RunResult


def report(result: RunResult, out: TextIO, shown_as_is: Callable[[int], bool] = lambda local_rank: False,
           script_args: Sequence[str] = (), checkpoint_dir: str | None = None) -> None:
    """The run's summary. ``shown_as_is(local_rank)``: whether that rank's output reached this console byte for
    byte (the only rank shown, unprefixed); its traceback and last lines are then not repeated. ``script_args``:
    what followed the target (a launcher flag among them is named when a rank exits 2 with a usage error).
    ``checkpoint_dir``: the job's, named at the end."""
    lines = []
    if result.interrupted_by is not None:
        lines.append(f"launcher: stopped by {result.interrupted_by}; every worker was stopped")
    elif result.output_closed is not None:
        lines.append(f"launcher: {result.output_closed.describe()}")
    root = result.root_cause if result.interrupted_by is None else None
    if result.interrupted_by is None:  # before the ranks of this node, which lost their peers with it
        lines += [f"launcher: job failed: {node.describe()}" for node in result.lost_nodes]
    if root is None and result.stopped_after_checkpoint is not None:
        lines.append(f"launcher: stopped after the checkpoint of step {result.stopped_after_checkpoint}, as asked: "
                     "run the job again to go on from it")
    if root is not None:
        lines += _failure_lines(result, root, shown_as_is(root.local_rank), script_args)
    lines += end_of_run(result, checkpoint_dir)
    print("\n".join(lines), file=out, flush=True)


def _failure_lines(result: RunResult, root: RankFailure, shown_above: bool, script_args: Sequence[str]) -> list[str]:
    """The root cause, its traceback and last output unless the console showed them as they were, a fix when one is
    known, then the other ranks."""
    lines = []
    if result.hang is not None:
        lines += _hang_lines(result.hang)
    else:
        above = "; its output is above" if shown_above and root.last_lines else ""
        lines.append(f"launcher: job failed at {_clock(root.timestamp)}: {root.describe()}{above}")
    if root.traceback and not shown_above:
        lines += [f"launcher: root cause traceback of rank {root.rank}:", root.traceback.rstrip()]
    # Shown already: the traceback, and the message of a ``sys.exit("message")`` (Python printed it too).
    traceback_lines = {line.strip() for line in (root.traceback or root.message or "").splitlines()}
    output = [line for line in _excerpt(root.last_lines) if line.strip() not in traceback_lines]
    if output and result.hang is None and not shown_above:
        lines.append(f"launcher: last output of rank {root.rank}:")
        lines += [f"[rank{root.rank}]: {line}" for line in output[-10:]]
    text = "\n".join([root.message or "", root.traceback or "", *root.last_lines])
    hint = known_error_hints(text) or script_usage_hint(root.exitcode, root.last_lines, script_args)
    if hint:
        lines.append(f"launcher: fix: {hint}")
    # After a hang every rank was stopped, the one named included: list them all.
    lines += [f"launcher: then: {other.describe()}" for other in result.failures
              if other is not root or result.hang is not None]
    return lines


def _hang_lines(hang: Hang) -> list[str]:
    """Which rank held up the job and why the launcher thinks so, where it was, and its last output."""
    who = f"rank {hang.rank} (local {hang.local_rank})"
    idle = f"{hang.idle:.1f} s (hang timeout {hang.timeout:g} s); every rank's stacks are above"
    if hang.waiting:
        others = f"rank{'s' if len(hang.waiting) > 1 else ''} {', '.join(map(str, hang.waiting))}"
        lines = [f"launcher: job stopped: {who} is holding up the others ({others} waiting in a collective): "
                 f"the job made no progress for {idle}"]
    else:
        lines = [f"launcher: job stopped: {who} made no progress for {idle}"]
    stack = _excerpt(hang.stack)
    if stack:
        lines.append(f"launcher: rank {hang.rank}'s main thread (most recent call first):")
        lines += [f"  {line.strip()}" for line in stack]
    lines += [f"[rank{hang.rank}]: {line}" for line in hang.last_lines[-10:]]
    return lines


# Frames of the machinery between the worker process and the user's code, in crash dumps.
_MACHINERY = ("launcher/bootstrap.py", "launcher/compat/", "torch/distributed/elastic/", "torch/multiprocessing/",
              "multiprocessing/", 'File "<string>"', "Extension modules:")


# A thread of the launcher's own in a crash dump (the monitor, the heartbeat): its whole stack is left out.
_OWN_THREAD = "launcher/runtime/threads.py"


def _excerpt(lines: Sequence[str]) -> list[str]:
    """The useful end of a rank's output: a crash dump from its first line, without launcher frames or threads."""
    start = max((i for i, line in enumerate(lines) if line.startswith("Fatal Python error")), default=0)
    kept = _without_own_threads(list(lines[start:]))
    return [line for line in kept if line.strip() and not any(m in line for m in _MACHINERY)]


def _without_own_threads(lines: list[str]) -> list[str]:
    """faulthandler's ``Thread 0x...`` blocks (a header, then indented frames) of the launcher's own threads dropped."""
    kept: list[str] = []
    block: list[str] = []
    for line in [*lines, ""]:
        if block and line.startswith("  "):
            block.append(line)
            continue
        if block:
            if not any(_OWN_THREAD in frame for frame in block):
                kept += block
            block = []
        if line.startswith("Thread 0x") and line.rstrip().endswith("(most recent call first):"):
            block = [line]
        else:
            kept.append(line)
    return kept[:-1]


def _clock(timestamp: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(timestamp)) + f".{int(timestamp % 1 * 1000):03d}"
