"""``python -m launcher``: argv → config → plan → preflight → run → exit code.

``main(argv) -> int`` is the only place where errors become exit codes (table
in ``launcher.errors``). Never imports torch before the plan is judged and the
job is really started.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NoReturn

from launcher import trace
from launcher.errors import EXIT_BROKEN_PIPE, EXIT_OK, EXIT_SIGINT, EXIT_USAGE, LauncherError, with_hint

if TYPE_CHECKING:
    from launcher.cli.check import CheckOptions
    from launcher.cli.flags import ParsedFlags
    from launcher.plan.model import LaunchPlan
    from launcher.preflight.findings import Finding
    from launcher.supervise.reaper import Reaper

trace.mark("launcher: launcher.cli imported")


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
        _discard_closed_streams()
        return EXIT_BROKEN_PIPE


def _discard_closed_streams() -> None:
    """Send what a standard stream whose reader went away still holds, and will be given, to /dev/null.

    The interpreter flushes both at exit: a flush into a closed pipe would raise there (and exit 120).
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:  # BrokenPipeError
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)


def prepare(
    args: list[str], launching: Helpers | None = None, judge: CheckOptions | None = None
) -> tuple[ParsedFlags, LaunchPlan, list[Finding]]:
    """Flags → job → plan → static preflight; with ``launching``, the launch's helpers start on the way;
    with ``judge``, the source is judged as another start method or platform would run it."""
    from launcher.cli.flags import parse_flags

    trace.mark("launcher: prepare start")
    flags = parse_flags(args, os.environ)
    if flags.job.target is None:
        from launcher.cli.flags import build_parser

        build_parser().print_usage(sys.stderr)
        raise LauncherError("no target given", "name a script, -m module, module:function or a .yaml job file")
    if launching is not None and not flags.dry_run:
        launching.start(str(flags.job.values.get("world.start_method", ("auto", ""))[0]))
    from launcher.clusters import detect  # imported after the server started: its start overlaps them
    from launcher.config.job import load_job
    from launcher.hostinfo import host_facts
    from launcher.plan.build import build_plan, rendezvous_host
    from launcher.preflight.checks import judged_as, run_static_checks, static_inputs, validate_skip

    job = load_job(flags.job)
    for warning in job.warnings:
        print(f"launcher: warning: {warning}", file=sys.stderr)
    facts = host_facts(os.environ, rendezvous_host(job.config), job.config.world.local_addr)
    plan = build_plan(job.config, job.target, job.args, detect(os.environ), facts)
    inputs = static_inputs(plan, facts, validate_skip(flags.skip_checks), job.origins)
    if judge is not None:
        inputs = judged_as(inputs, judge.as_method, judge.platform)
    findings = run_static_checks(inputs)
    trace.mark("launcher: prepare end")
    return flags, plan, findings


def _check(args: list[str]) -> int:
    """``launcher check [--as METHOD] [--platform OS] TARGET``: every preflight check as a table; nothing starts."""
    from launcher.cli.check import check_help, split_check_options
    from launcher.preflight.findings import failures, render_table

    options, rest = split_check_options(args)
    if options.help:
        print(check_help(), end="")
        return EXIT_OK
    _, _, findings = prepare(rest, judge=options)
    if options.judged_as():
        print(options.judged_as())
    print(render_table(findings))
    return EXIT_USAGE if failures(findings) else EXIT_OK


def _bench_data(args: list[str]) -> int:
    from launcher.cli.bench_data import main as bench_main

    return bench_main(args)


def _report(args: list[str]) -> int:
    from launcher.cli.report import main as report_main

    return report_main(args)


def _sbatch(args: list[str]) -> int:
    from launcher.cli.sbatch import main as sbatch_main

    return sbatch_main(args)


SUBCOMMANDS: dict[str, Callable[[list[str]], int]] = {
    "check": _check, "bench-data": _bench_data, "sbatch": _sbatch, "report": _report,
}


class Helpers:
    """A launch's own processes, started as soon as the flags say that it will happen: the reaper, then the server."""

    def __init__(self) -> None:
        self.reaper: Reaper | None = None

    def start(self, requested_method: str) -> None:
        import tempfile

        from launcher.supervise.reaper import Reaper
        from launcher.supervise.server import start_worker_server_early

        tempfile.gettempdir()  # its first call probes TMPDIR with a file the reaper cannot know of: first, then
        trace.mark("launcher: start reaper")
        self.reaper = Reaper()  # first: it outlives a SIGKILL of this process group and cleans up after it
        start_worker_server_early(requested_method, self.reaper)

    def stop(self) -> None:
        """Nothing may outlive a launch, one that happened or not: not the server, its folder, the reaper."""
        server = sys.modules.get("launcher.supervise.server")
        if server is not None:
            server.stop_worker_server()
        if self.reaper is not None:
            self.reaper.close()
            self.reaper = None


def _launch(args: list[str]) -> int:
    from launcher.slurm.notice import ignore_preemption_notice

    ignore_preemption_notice(os.environ)  # before any process starts: they all inherit it
    helpers = Helpers()
    try:
        flags, plan, findings = prepare(args, helpers)
        from launcher.preflight.findings import preflight_error

        error = preflight_error(findings)
        if error is not None:
            raise error
    except BaseException:
        helpers.stop()
        raise
    for finding in findings:
        if finding.status == "warn":
            where = f"{finding.where}: " if finding.where else ""
            print(f"launcher: warning: {where}{with_hint(finding.message, f'fix: {finding.fix}')}", file=sys.stderr)
    if flags.dry_run:
        from launcher.plan.render import render_plan

        print(render_plan(plan))
        return EXIT_OK
    from launcher.cli.summary import report
    from launcher.slurm.requeue import requeue_job, restart_note
    from launcher.supervise.run import run_plan

    note = restart_note(os.environ)
    if note is not None:
        print(f"launcher: {note}", file=sys.stderr, flush=True)
    try:
        result = run_plan(plan, helpers.reaper)
    finally:
        helpers.stop()
    try:
        if not (flags.quiet and result.exit_code == 0):
            report(result, sys.stderr, plan.output.shows_as_is, plan.target_args, plan.config.checkpoint.dir)
        if result.stopped_after_checkpoint is not None and plan.stop.requeue_under_slurm:
            requeued = requeue_job(os.environ)  # the checkpoint is complete: every worker is done
            if requeued is not None:
                print(f"launcher: {requeued}", file=sys.stderr, flush=True)
    except BrokenPipeError:  # stderr's reader went away too (``2>&1 | head``): the exit code still tells
        _discard_closed_streams()
    return result.exit_code


def entry() -> NoReturn:
    """Console-script entry: run, then exit without a slow interpreter shutdown where that is safe."""
    code = main()
    trace.mark("launcher: main returned")
    if "torch" in sys.modules:
        from launcher.compat import mp
        from launcher.supervise.server import stop_worker_server

        stop_worker_server()
        if mp.run_exit_function():  # multiprocessing's finalizers, as at a normal exit
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            os._exit(code)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
