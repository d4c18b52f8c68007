"""``launcher sbatch JOB.yaml``: the job's sbatch script, printed, written (``-o``) or submitted (``--submit``).

The job is read and validated by the one config path (its ``slurm:`` section,
flags such as ``--nodes`` on top, then ``--set``), so a mistake is found here,
not on the cluster. sbatch runs with an argument list, never through a shell.
Never imports torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from launcher.cli.flags import UsageParser
from launcher.config.job import load_job
from launcher.config.request import JobRequest
from launcher.config.slurm_rules import sbatch_option_problem, shell_line_problem
from launcher.errors import EXIT_OK, ConfigError, SchedulerError, UsageError
from launcher.schema import JobConfig
from launcher.slurm.script import ScriptRequest, output_dir, render_script
from launcher.targets import is_yaml

SBATCH_TIMEOUT = 120.0  # seconds: sbatch waits for slurmctld, which may be busy

# flag → (slurm: key, conversion)
RESOURCE_FLAGS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "--nodes": ("nodes", int), "--gpus-per-node": ("gpus_per_node", int), "--cpus-per-task": ("cpus_per_task", int),
    "--partition": ("partition", str), "--time": ("time", str), "--account": ("account", str), "--qos": ("qos", str),
    "--mem": ("mem", str), "--constraint": ("constraint", str), "--job-name": ("job_name", str),
}


def build_parser() -> argparse.ArgumentParser:
    parser = UsageParser(prog="launcher sbatch", allow_abbrev=False,
                     usage="python -m launcher sbatch JOB.yaml [options] [--dry-run | -o FILE | --submit] "
                           "[-- job args...]",
                     description="Write the sbatch script of a job (its slurm: section, and these flags on top).")
    parser.add_argument("job", metavar="JOB.yaml", help="the job file")
    for flag, (key, convert) in RESOURCE_FLAGS.items():
        parser.add_argument(flag, dest=key, type=convert, default=None, help=f"slurm.{key}")
    parser.add_argument("--sbatch-line", dest="sbatch_lines", action="append", default=[], metavar="OPTION",
                        help="one more #SBATCH option, after slurm.extra_sbatch, e.g. --sbatch-line=--mail-type=END")
    parser.add_argument("--setup", dest="setup", action="append", default=[], metavar="LINE",
                        help="one more shell line before srun, after slurm.setup, e.g. 'module load cuda'")
    parser.add_argument("--set", dest="set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any job key; passed on to the launchers too")
    parser.add_argument("--dry-run", action="store_true", help="print the script (the default)")
    parser.add_argument("-o", "--output", dest="script_file", metavar="FILE", help="write the script to FILE")
    parser.add_argument("--submit", action="store_true", help="submit it with sbatch and print the job id")
    return parser


def main(argv: Sequence[str]) -> int:
    """``sbatch``: render, then print, write and/or submit. Raises LauncherError."""
    argv = list(argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    options = build_parser().parse_args(argv[:cut])
    if options.dry_run and (options.script_file or options.submit):
        raise UsageError("--dry-run only prints the script", "drop --dry-run, or drop -o and --submit")
    request = script_request(options, tuple(argv[cut + 1:]))
    script = render_script(request)
    if not options.script_file and not options.submit:
        sys.stdout.write(script)
        return EXIT_OK
    folder = output_dir(request)
    try:
        os.makedirs(folder, exist_ok=True)  # sbatch does not create the folder of --output
    except OSError as error:
        raise ConfigError(f"slurm.output: cannot create {folder}: {error.strerror}", "choose a writable folder") \
            from None
    if options.script_file:
        _write(Path(options.script_file), script)
    if options.submit:
        job_id = submit(script, options.script_file)
        print(job_id)
        print(f"launcher: submitted SLURM job {job_id}; its output: {folder}/slurm-{job_id}.out", file=sys.stderr)
    return EXIT_OK


def script_request(options: argparse.Namespace, job_args: tuple[str, ...]) -> ScriptRequest:
    """The job, validated with the flags on top, and what the srun line carries."""
    if not is_yaml(options.job):
        raise UsageError(f"{options.job}: sbatch takes a .yaml job file", "write the job as YAML with a slurm: section")
    values = {f"slurm.{key}": (getattr(options, key), flag) for flag, (key, _) in RESOURCE_FLAGS.items()
              if getattr(options, key) is not None}
    job_file = str(Path(options.job).resolve())
    job = load_job(JobRequest(job_file, values=values, overrides=tuple(options.set), target_args=job_args))
    config = _with_lines(job.config, options.sbatch_lines, options.setup)
    return ScriptRequest(config, job_file, tuple(options.set), job_args, os.getcwd(),
                         config.slurm.python or sys.executable)


def _with_lines(config: JobConfig, sbatch_lines: list[str], setup: list[str]) -> JobConfig:
    """``config`` with the command line's #SBATCH options and setup lines after the job file's."""
    for flag, items, check in (("--sbatch-line", sbatch_lines, sbatch_option_problem),
                               ("--setup", setup, shell_line_problem)):
        for item in items:
            problem = check(item)
            if problem is not None:
                raise UsageError(f"{flag}: {problem}", f"give each {flag} one line; repeat the flag for more")
    slurm = dataclasses.replace(config.slurm, extra_sbatch=[*config.slurm.extra_sbatch, *sbatch_lines],
                                setup=[*config.slurm.setup, *setup])
    return dataclasses.replace(config, slurm=slurm)


def _write(path: Path, script: str) -> None:
    try:
        path.write_text(script, encoding="utf-8")
        path.chmod(0o755)
    except OSError as error:
        raise UsageError(f"-o {path}: cannot write: {error.strerror}", "choose a writable path") from None


def submit(script: str, script_file: str | None) -> str:
    """Submit with ``sbatch --parsable`` (the file, or the script on stdin); the job id."""
    argv = ["sbatch", "--parsable"] + ([str(Path(script_file).resolve())] if script_file else [])
    try:
        done = subprocess.run(argv, input=None if script_file else script, capture_output=True, text=True,
                              timeout=SBATCH_TIMEOUT, check=False)
    except FileNotFoundError:
        raise SchedulerError("sbatch: not found", "run on a SLURM login node, or use -o FILE and submit it there") \
            from None
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SchedulerError(f"sbatch: {error}", "check that SLURM's controller is reachable (sinfo)") from None
    lines = (done.stderr or done.stdout).strip().splitlines()
    if done.returncode != 0:
        why = lines[-1] if lines else "no message"
        raise SchedulerError(f"sbatch refused the job (exit code {done.returncode}): {why}",
                             "fix the slurm: settings it names, or check with --dry-run")
    job_id = done.stdout.strip().split(";")[0]
    if not job_id.isdigit():
        raise SchedulerError(f"sbatch: unexpected answer {done.stdout.strip()!r}", "check the job with squeue")
    return job_id
