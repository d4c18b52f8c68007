"""``python -m launcher``: argv → config → plan → preflight → run → exit code.

The only place where errors become exit codes (table in ``errors.py``).
Never imports torch before the plan is judged and the job is really started.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NoReturn, TextIO

from launcher.errors import EXIT_BROKEN_PIPE, EXIT_OK, EXIT_SIGINT, EXIT_USAGE, LauncherError
from launcher.result import RunResult

if TYPE_CHECKING:
    from launcher.findings import Finding
    from launcher.flags import ParsedFlags
    from launcher.plan import LaunchPlan


def main(argv: Sequence[str] | None = None) -> int:
    """Run the launcher; returns the exit code."""
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
    except BrokenPipeError:  # the reader went away (``| head``): stop writing, no traceback
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def _prepare(args: list[str], launching: bool = False) -> tuple[ParsedFlags, LaunchPlan, list[Finding]]:
    from launcher.flags import parse_flags

    flags = parse_flags(args, os.environ)
    if flags.target is None:
        from launcher.flags import build_parser

        build_parser().print_usage(sys.stderr)
        raise LauncherError("no target given", "name a script, -m module, module:function or a .yaml job file")
    if launching and not flags.dry_run:
        from launcher.supervisor import start_worker_server_early

        start_worker_server_early(str(flags.values.get("world.start_method", ("auto", ""))[0]))
    from launcher.clusters import detect  # imported after the server started: its start overlaps them
    from launcher.job import host_facts, load_job
    from launcher.plan import build_plan
    from launcher.preflight import run_static_checks, static_inputs, validate_skip

    job = load_job(flags)
    facts = host_facts(os.environ)
    plan = build_plan(job.config, job.target, job.args, detect(os.environ), facts)
    findings = run_static_checks(static_inputs(plan, facts, validate_skip(flags.skip_checks)))
    return flags, plan, findings


def _check(args: list[str]) -> int:
    """``launcher check TARGET``: every preflight check as a table; nothing starts."""
    from launcher.findings import failures, render_table

    _, _, findings = _prepare(args)
    print(render_table(findings))
    return EXIT_USAGE if failures(findings) else EXIT_OK


def _bench_data(args: list[str]) -> int:
    """``launcher bench-data job.yaml``: measure loader settings on the job's dataset."""
    from launcher.bench.data_sweep import main as bench_main

    return bench_main(args)


SUBCOMMANDS: dict[str, Callable[[list[str]], int]] = {"check": _check, "bench-data": _bench_data}


def _launch(args: list[str]) -> int:
    try:
        flags, plan, findings = _prepare(args, launching=True)
        from launcher.findings import preflight_error

        error = preflight_error(findings)
        if error is not None:
            raise error
    except BaseException:
        _stop_early_server()
        raise
    for finding in findings:
        if finding.status == "warn":
            where = f"{finding.where}: " if finding.where else ""
            print(f"launcher: warning: {where}{finding.message} (fix: {finding.fix})", file=sys.stderr)
    if flags.dry_run:
        from launcher.plan import render_plan

        print(render_plan(plan))
        return EXIT_OK
    from launcher.supervisor import run_plan

    result = run_plan(plan)
    report(result, sys.stderr)
    return result.exit_code


def _stop_early_server() -> None:
    """Nothing may outlive a launch that does not happen: not even the server started early."""
    supervisor = sys.modules.get("launcher.supervisor")
    if supervisor is not None:
        supervisor.stop_worker_server()


def report(result: RunResult, out: TextIO) -> None:
    """The run's summary: nothing on success; on failure the root cause first, then the consequences."""
    from launcher.preflight import known_error_hints

    if result.interrupted_by is not None:
        print(f"launcher: stopped by {result.interrupted_by}; every worker was stopped", file=out, flush=True)
        return
    root = result.root_cause
    if root is None:
        return
    lines = []
    if result.hang is not None:
        hang = result.hang
        lines.append(f"launcher: job stopped: rank {hang.rank} (local {hang.local_rank}) made no progress for "
                     f"{hang.idle:.1f} s (hang timeout {hang.timeout:g} s); every rank's stacks are above")
        lines += [f"[rank{hang.rank}]: {line}" for line in hang.last_lines[-10:]]
    else:
        lines.append(f"launcher: job failed: {root.describe()} at {_clock(root.timestamp)}")
    if root.traceback:
        lines += [f"launcher: root cause traceback (rank {root.rank}):", root.traceback.rstrip()]
    traceback_lines = {line.strip() for line in (root.traceback or "").splitlines()}
    output = [line for line in _excerpt(root.last_lines) if line.strip() not in traceback_lines]
    if output and result.hang is None:
        lines.append(f"launcher: last output of rank {root.rank}:")
        lines += [f"[rank{root.rank}]: {line}" for line in output[-10:]]
    hint = known_error_hints("\n".join([root.message or "", root.traceback or "", *root.last_lines]))
    if hint:
        lines.append(f"launcher: fix: {hint}")
    lines += [f"launcher: then: {other.describe()}" for other in result.failures if other is not root]
    if result.log_dir:
        lines.append(f"launcher: per-rank logs in {result.log_dir}")
    print("\n".join(lines), file=out, flush=True)


# Frames of the machinery between the worker process and the user's code, in crash dumps.
_MACHINERY = ("launcher/bootstrap.py", "torch/distributed/elastic/", "torch/multiprocessing/", "multiprocessing/",
              'File "<string>"', "Extension modules:")


def _excerpt(lines: Sequence[str]) -> list[str]:
    """The useful end of a rank's output: a crash dump from its first line, without launcher frames."""
    start = max((i for i, line in enumerate(lines) if line.startswith("Fatal Python error")), default=0)
    return [line for line in lines[start:] if line.strip() and not any(m in line for m in _MACHINERY)]


def _clock(timestamp: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(timestamp)) + f".{int(timestamp % 1 * 1000):03d}"


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
