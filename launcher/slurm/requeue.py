"""Requeue after a save and stop under SLURM, and the note of a requeued job's restart. Never imports torch.

When the preemption notice (``slurm.preempt_signal``) made every rank save and
stop, the launcher of SLURM task 0 asks SLURM to run the job again
(``scontrol requeue $SLURM_JOB_ID``) once its workers are done, that is once the
checkpoint is complete; the next run resumes from it (``checkpoint.resume:
auto``). Only task 0 asks: one request per job. A failed request is a warning,
not an error: the job did stop after a checkpoint (exit 75), and can be
submitted again by hand.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping

REQUEUE_TIMEOUT = 60.0  # seconds: scontrol waits for slurmctld, which may be busy


def is_task_zero(environ: Mapping[str, str]) -> bool:
    """Whether this process is SLURM's task 0 of a job (a batch script without srun counts as task 0)."""
    return "SLURM_JOB_ID" in environ and environ.get("SLURM_PROCID", "0").strip() == "0"


def restart_note(environ: Mapping[str, str]) -> str | None:
    """``resuming: restart N of job J`` in task 0 of a job SLURM requeued; None otherwise."""
    count = environ.get("SLURM_RESTART_COUNT", "0").strip()
    if not is_task_zero(environ) or not count.isdigit() or int(count) == 0:
        return None
    return f"resuming: restart {int(count)} of SLURM job {environ['SLURM_JOB_ID']}"


def requeue_job(environ: Mapping[str, str]) -> str | None:
    """Requeue this SLURM job if this is task 0; what happened, as one line (None: not task 0 of a job)."""
    if not is_task_zero(environ):
        return None
    job = environ["SLURM_JOB_ID"]
    scontrol = shutil.which("scontrol", path=environ.get("PATH"))
    if scontrol is None:
        return f"warning: cannot requeue SLURM job {job}: scontrol is not on PATH (submit the job again to go on)"
    try:
        done = subprocess.run([scontrol, "requeue", job], capture_output=True, text=True, timeout=REQUEUE_TIMEOUT,
                              check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"warning: scontrol requeue {job} failed: {error} (submit the job again to go on)"
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        return (f"warning: scontrol requeue {job} failed with exit code {done.returncode}"
                f"{': ' + why[-1] if why else ''} (submit the job again to go on)")
    return f"requeued SLURM job {job}: it resumes from this checkpoint when it runs again"
