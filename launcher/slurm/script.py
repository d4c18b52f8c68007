"""A job's sbatch script: ``#SBATCH`` resources, the setup lines, then ``exec srun`` of the launcher. Pure.

Values in ``#SBATCH`` lines were refused by the config's rules when sbatch
could misread them (``launcher.config.slurm_rules``): sbatch reads no shell
quoting there. Every value of the srun line is ``shlex.quote``d, so no name,
path or argument can become shell code.

``exec srun``: the preemption notice (``--signal=B:USR1@S``, or ``scancel
--signal=USR1 --batch``) goes to the batch shell only. Exec'd, srun is that
process, and srun passes SIGUSR1 on to the step: to every launcher, and to
every other process of the step too (``launcher.slurm.notice``). Measured with
SLURM 22.05: the tasks had it 17 ms after scancel. A bash that ran srun as a
child would instead die of the signal (its default action), and SLURM would
end the step with SIGTERM: no checkpoint.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from launcher.config.slurm_rules import preempt_signal, sbatch_value_problem
from launcher.errors import ConfigError
from launcher.schema import JobConfig
from launcher.slurm.notice import NOTICE_SIGNAL


@dataclass(frozen=True)
class ScriptRequest:
    """What the script runs: the job file (absolute), its ``--set`` overrides and arguments, from where."""

    config: JobConfig
    job_file: str
    overrides: tuple[str, ...] = ()
    args: tuple[str, ...] = ()  # the job's own arguments (after ``--``)
    cwd: str = "/"  # the srun line runs here: relative paths in overrides mean what they meant at submission
    python: str = "python"  # the interpreter the launchers run with


def output_dir(request: ScriptRequest) -> str:
    """The folder of ``slurm-<jobid>.out`` and ``.err``: ``slurm.output``, else ``logs.dir``, else the job file's."""
    config = request.config
    folder = config.slurm.output or config.logs.dir or str(Path(request.job_file).parent)
    folder = os.path.normpath(os.path.join(request.cwd, folder))
    problem = sbatch_value_problem(folder)
    if problem is not None:
        raise ConfigError(f"slurm.output: {problem}",
                          "set slurm.output to a folder whose path has no spaces, quotes, backslashes or #")
    return folder


def tasks_per_node(config: JobConfig) -> int:
    """Launchers SLURM starts on each node: one (per_node), or one per rank (per_task: ``ntasks_per_node``, else
    ``gpus_per_node``, else ``world.nprocs`` when it is a number)."""
    slurm = config.slurm
    if slurm.mode == "per_node":
        return 1
    nprocs = config.world.nprocs if isinstance(config.world.nprocs, int) else None
    return slurm.ntasks_per_node or slurm.gpus_per_node or nprocs or 1


def render_script(request: ScriptRequest) -> str:
    """The sbatch script for ``request``."""
    slurm = request.config.slurm
    lines = ["#!/bin/bash", "# Written by `python -m launcher sbatch`; resources first (sbatch reads #SBATCH lines "
             "up to the first command)."]
    lines += [f"#SBATCH {option}" for option in _sbatch_options(request)]
    lines += [f"#SBATCH {option}" for option in slurm.extra_sbatch]
    if slurm.setup:
        lines += ["", "# setup (slurm.setup)", *slurm.setup]
    lines += ["", f"cd {shlex.quote(request.cwd)}",
              "# exec: srun becomes the batch shell, which SLURM's preemption notice reaches; it passes it on to "
              "every process of the step", "exec " + shlex.join(_srun_argv(request))]
    return "\n".join(lines) + "\n"


def _sbatch_options(request: ScriptRequest) -> list[str]:
    slurm = request.config.slurm
    name = slurm.job_name or _default_name(request.job_file)
    options = [f"--job-name={name}", f"--nodes={slurm.nodes}", f"--ntasks-per-node={tasks_per_node(request.config)}"]
    if slurm.gpus_per_node is not None:
        options.append(f"--gpus-per-node={slurm.gpus_per_node}")
    if slurm.cpus_per_task is not None:
        options.append(f"--cpus-per-task={slurm.cpus_per_task}")
    for key in ("partition", "time", "account", "qos", "mem", "constraint"):
        value = getattr(slurm, key)
        if value is not None:
            options.append(f"--{key}={value}")
    folder = output_dir(request).replace("%", "%%")  # sbatch expands %j and friends in these paths
    options += [f"--output={folder}/slurm-%j.out", f"--error={folder}/slurm-%j.err"]
    signal = preempt_signal(slurm, request.config.checkpoint)
    if signal is not None and signal != NOTICE_SIGNAL:
        raise ConfigError(f"checkpoint.stop_signal: {signal} cannot be SLURM's preemption notice: SLURM sends it to "
                          "every process of the job, and the launcher's agent takes SIGUSR2 for its own",
                          f"set checkpoint.stop_signal: {NOTICE_SIGNAL} for SLURM jobs, or null for no notice")
    if signal is not None:
        options.append(f"--signal=B:{signal.removeprefix('SIG')}@{slurm.preempt_warning}")
    if slurm.requeue:  # a requeued run writes to the same files: after the first run's output, not over it
        options += ["--requeue", "--open-mode=append"]
    else:
        options.append("--no-requeue")
    return options


def _srun_argv(request: ScriptRequest) -> list[str]:
    slurm = request.config.slurm
    argv = ["srun", f"--ntasks-per-node={tasks_per_node(request.config)}"]
    if slurm.gpus_per_node is not None:
        argv.append(f"--gpus-per-node={slurm.gpus_per_node}")
    if slurm.cpus_per_task is not None:  # srun does not inherit sbatch's (srun(1) of SLURM 22.05)
        argv.append(f"--cpus-per-task={slurm.cpus_per_task}")
    argv += [request.python, "-m", "launcher"]
    if slurm.mode == "per_node" and slurm.gpus_per_node:
        argv += ["--nprocs", "gpu"]  # a rank for each GPU the node was given
    argv.append(request.job_file)
    for assignment in request.overrides:
        argv += ["--set", assignment]
    if request.args:
        argv += ["--", *request.args]
    return argv


def _default_name(job_file: str) -> str:
    """The job file's name without its suffix, with what an #SBATCH line cannot hold replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9_.+,:=@-]", "_", Path(job_file).stem) or "launcher"
