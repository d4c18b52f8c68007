"""The one error hierarchy of the launcher and its exit-code table.

User mistakes are ``LauncherError`` subclasses carrying a one-line message and
a hint; only ``launcher.cli.main`` turns them into text and an exit code. A
failed job is not an exception of this kind: it is a ``RunResult`` (see
``result.py``), raised as ``JobFailed`` only by the Python API.

The lowest layer of the package: imports nothing of the launcher, never torch.
"""

from __future__ import annotations

# Exit codes, one table (documented in the README).
EXIT_OK = 0
EXIT_FAILED = 1  # a rank failed with an exit code outside 1..125, or no code at all
EXIT_USAGE = 2  # usage, config or preflight error: nothing was started
EXIT_STOPPED = 75  # stopped after a checkpoint, as asked (checkpoint.stop_signal): run it again to go on (EX_TEMPFAIL)
EXIT_HANG = 124  # the hang watchdog stopped the job
EXIT_SIGINT = 130  # the launcher was interrupted (Ctrl-C); by another signal N: 128 + N (143 SIGTERM, 129 SIGHUP)
# The reader of the launcher's stdout or stderr went away (``| head``): the job was stopped, or its output lost
# (128 + SIGPIPE, as a shell reports a tool killed by it).
EXIT_BROKEN_PIPE = 141

# What each exit code means, as ``--help`` prints it and the README's table says it.
EXIT_CODES: tuple[tuple[str, str], ...] = (
    (str(EXIT_OK), "success"),
    (str(EXIT_FAILED), "a rank failed with an exit code outside 1..125, or without one"),
    (str(EXIT_USAGE), "usage, config or preflight error: nothing was started; or the nodes did not meet"),
    ("1..125", "the root-cause rank's own exit code"),
    ("128+N", "the root-cause rank was killed by signal N (e.g. 137 for SIGKILL)"),
    (str(EXIT_STOPPED), "stopped after a checkpoint, as asked: run the job again to go on from it"),
    (str(EXIT_HANG), "the hang watchdog stopped the job"),
    (str(EXIT_BROKEN_PIPE), "the reader of the launcher's output went away (| head)"),
    (f"{EXIT_SIGINT} / 143 / 129", "the launcher was interrupted by SIGINT / SIGTERM / SIGHUP"),
)


def exit_code_for(exitcode: int | None, signal_number: int | None) -> int:
    """The launcher's exit code for a root-cause rank that ended this way."""
    if signal_number is not None:
        return 128 + signal_number
    if exitcode is not None and 1 <= exitcode <= 125:
        return exitcode
    return EXIT_FAILED


class LauncherError(Exception):
    """A mistake in what the user asked for: one line, a hint, exit code 2."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return with_hint(self.message, self.hint)


def with_hint(message: str, hint: str) -> str:
    """``message (hint)``; a hint with parentheses of its own comes after a semicolon: parentheses never nest."""
    if not hint:
        return message
    return f"{message}; {hint}" if "(" in hint else f"{message} ({hint})"


class UsageError(LauncherError):
    """Bad command line: unknown or conflicting flags, a missing target."""


class ConfigError(LauncherError):
    """Bad job file or override: unreadable YAML, unknown key, wrong type or range."""


class TargetError(LauncherError):
    """The script, module or function to run cannot be found."""


class PreflightError(LauncherError):
    """A preflight check failed: the job would break if started."""


class SchedulerError(LauncherError):
    """The scheduler cannot take the job: sbatch is missing, unreachable, or refused it (nothing was submitted)."""


class RendezvousFailed(LauncherError):
    """The nodes did not meet: nothing answered at the endpoint, or the others did not come, within the timeout."""


class MissingPackage(LauncherError):
    """An optional package that the command needs is not installed; the hint names the pip command."""


class PlatformError(LauncherError):
    """Something this operating system cannot do (e.g. NCCL on Windows)."""


class HostLimitError(LauncherError):
    """The job needs more than this host allows (open files per process, processes)."""


class CheckpointError(ConfigError):
    """A checkpoint that cannot be used: corrupt, truncated, refused by ``weights_only``, or not this job's.

    Raised in a worker, it fails that rank with exit code 1 (as every error a
    rank raises), so the launcher exits 1 with this one line as the root cause.
    """
