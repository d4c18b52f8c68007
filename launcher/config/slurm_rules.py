"""The ``slurm:`` section's own rules: what an ``#SBATCH`` line and a setup line may hold, and what must agree.

An ``#SBATCH`` line is read by sbatch, not by the shell, so no shell quoting
applies there: sbatch splits it at whitespace, reads quotes and backslashes
its own way and ends it at ``#``. A value with any of those, or a control
character (a newline would start a line that bash runs), is refused rather
than escaped. Setup lines are the user's shell by design; only a line break
inside one is refused, so that each item is one line. Never imports torch.
"""

from __future__ import annotations

import re

from launcher.schema import CheckpointSettings, SlurmSettings

Problem = tuple[str, str, str]  # (key in slurm:, problem, fix)

_SBATCH_UNSAFE = re.compile(r"[\s\"'\\#\x00-\x1f\x7f]")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # a tab is fine in a shell line
_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")
_MEM = re.compile(r"^\d+[KMGT]?$")
SBATCH_VALUE_KEYS = ("partition", "time", "account", "qos", "mem", "constraint", "job_name")


def sbatch_value_problem(value: str) -> str | None:
    """Why ``value`` cannot be written into an ``#SBATCH`` line, or None."""
    if not value:
        return "is empty"
    bad = _SBATCH_UNSAFE.search(value)
    if bad is None:
        return None
    return f"{value!r} holds {bad.group()!r}, which an #SBATCH line cannot carry (sbatch reads no shell quoting)"


def shell_line_problem(line: str) -> str | None:
    """Why ``line`` cannot be one line of the script, or None."""
    bad = _CONTROL.search(line)
    if bad is None:
        return None
    return f"{line!r} holds {bad.group()!r}: each item must be one line of text"


def sbatch_option_problem(option: str) -> str | None:
    """Why ``option`` cannot follow ``#SBATCH``, or None."""
    problem = shell_line_problem(option)
    if problem is None and not option.startswith("-"):
        problem = f"{option!r} is not an sbatch option"
    return problem


def time_limit_seconds(text: str) -> int | None:
    """sbatch's ``--time`` in seconds (None: unlimited); ValueError when it is none of sbatch's forms."""
    if text.lower() in ("infinite", "unlimited"):
        return None
    match = _TIME.match(text)
    if match is None:
        raise ValueError(text)
    days, first, second, third = match.groups()
    if days is not None:  # D-H, D-H:M, D-H:M:S
        hours, minutes, seconds = int(first), int(second or 0), int(third or 0)
        return ((int(days) * 24 + hours) * 60 + minutes) * 60 + seconds
    if third is not None:  # H:M:S
        return (int(first) * 60 + int(second)) * 60 + int(third)
    return int(first) * 60 + int(second or 0)  # M, M:S


def slurm_problem(slurm: SlurmSettings, checkpoint: CheckpointSettings) -> Problem | None:
    """The first thing wrong with the ``slurm:`` section (given the job's ``checkpoint:``), or None."""
    for key in SBATCH_VALUE_KEYS:
        value = getattr(slurm, key)
        if value is None:
            continue
        problem = sbatch_value_problem(value)
        if problem is not None:
            return key, problem, f"set slurm.{key} to a value without spaces, quotes, backslashes or #"
    if slurm.output is not None and (problem := sbatch_value_problem(slurm.output)) is not None:
        return "output", problem, "set slurm.output to a folder whose path has no spaces, quotes, backslashes or #"
    if slurm.mem is not None and not _MEM.match(slurm.mem):
        return "mem", f"{slurm.mem!r} is not a size", "write a number with an optional unit K, M, G or T, e.g. 64G"
    for key, check, fix in (("extra_sbatch", sbatch_option_problem, "write each as an option, e.g. --mail-type=END"),
                            ("setup", shell_line_problem, "write each shell line as an item of its own")):
        for item in getattr(slurm, key):
            problem = check(item)
            if problem is not None:
                return key, problem, fix
    if slurm.mode == "per_node" and slurm.ntasks_per_node not in (None, 1):
        return ("ntasks_per_node", "is only for mode per_task: per_node runs one launcher per node",
                "remove slurm.ntasks_per_node, or set slurm.mode: per_task")
    if slurm.preempt_signal is not None and slurm.preempt_signal != checkpoint.stop_signal:
        return ("preempt_signal", f"is {slurm.preempt_signal} but checkpoint.stop_signal is "
                f"{checkpoint.stop_signal}: the launchers would not save and stop on it",
                "set both to the same signal, or remove slurm.preempt_signal: it defaults to checkpoint.stop_signal")
    return _time_problem(slurm, checkpoint.stop_signal is not None)


def preempt_signal(slurm: SlurmSettings, checkpoint: CheckpointSettings) -> str | None:
    """The signal the script asks for ahead of the time limit: ``checkpoint.stop_signal`` (None: no warning)."""
    return slurm.preempt_signal or checkpoint.stop_signal


def _time_problem(slurm: SlurmSettings, warned: bool) -> Problem | None:
    if slurm.time is None:
        return None
    try:
        limit = time_limit_seconds(slurm.time)
    except ValueError:
        return ("time", f"{slurm.time!r} is not a time limit",
                "write MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS, e.g. 04:00:00")
    if warned and limit is not None and slurm.preempt_warning >= limit:
        return ("time", f"{slurm.time} leaves no time before the preemption notice, "
                f"slurm.preempt_warning={slurm.preempt_warning} s ahead of it",
                "give a longer time limit, or set slurm.preempt_warning to fewer seconds")
    return None
