"""``python -m launcher``: argv → plan → run → exit code. The only place errors become exit codes."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import NoReturn

from launcher.errors import EXIT_SIGINT, EXIT_USAGE, LauncherError
from launcher.result import RunResult


def _check(argv: list[str]) -> int:
    raise LauncherError("launcher check is not available yet", "it arrives with the spawn-safety checks")


SUBCOMMANDS: dict[str, Callable[[list[str]], int]] = {"check": _check}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the launcher; returns the exit code (see the table in ``errors.py``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] in SUBCOMMANDS:
            return SUBCOMMANDS[args[0]](args[1:])
        return _launch(args)
    except LauncherError as error:
        print(f"launcher: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return EXIT_SIGINT


def _launch(args: list[str]) -> int:
    from launcher.flags import parse_flags
    from launcher.job import load_job, plan_job
    from launcher.plan import render_plan

    flags = parse_flags(args, os.environ)
    if flags.target is None and not flags.dry_run:
        parse_flags(["--help"], os.environ)  # prints usage and raises SystemExit(0)
    job = load_job(flags)
    plan = plan_job(job, os.environ)
    if flags.dry_run:
        print(render_plan(plan))
        return 0
    from launcher.supervisor import run_plan

    result = run_plan(plan)
    report(result)
    return result.exit_code


def report(result: RunResult, stream: object = None) -> None:
    """The run's summary on stderr: nothing on success, the root cause first on failure."""
    out = stream or sys.stderr
    root = result.root_cause
    if root is None:
        return
    when = time.strftime("%H:%M:%S", time.localtime(root.timestamp)) + f".{int(root.timestamp % 1 * 1000):03d}"
    lines = [f"launcher: job failed: {root.describe()} at {when}"]
    if root.traceback:
        lines += ["launcher: root cause traceback (rank %d):" % root.rank, root.traceback.rstrip()]
    for line in root.last_lines:
        lines.append(f"[rank{root.rank}]: {line}")
    for other in result.failures:
        if other is not root:
            lines.append(f"launcher: then: {other.describe()}")
    if result.log_dir:
        lines.append(f"launcher: per-rank logs in {result.log_dir}")
    print("\n".join(lines), file=out, flush=True)


def entry() -> NoReturn:
    """Console-script entry: run, then exit without a slow interpreter shutdown."""
    code = main()
    if "torch" in sys.modules:
        import multiprocessing.util

        from launcher.supervisor import stop_worker_server

        stop_worker_server()
        multiprocessing.util._exit_function()  # type: ignore[attr-defined]
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
