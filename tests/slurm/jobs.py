"""Submit a job file with ``python -m launcher sbatch JOB.yaml ... --submit`` and read what the job wrote."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from launcher.testing.cli import run_launcher


def submit(job: Path, options: Sequence[object], env: Mapping[str, str], job_args: Sequence[object] = ()) -> str:
    """The id of the job submitted by ``launcher sbatch JOB OPTIONS --submit -- JOB_ARGS`` (from the job's folder)."""
    done = run_launcher(["sbatch", job, *options, "--submit", "--", *job_args], cwd=job.parent, env=env, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    job_id = done.stdout.strip()
    assert job_id.isdigit(), done.stdout + done.stderr
    return job_id


def output(folder: Path, job_id: str) -> str:
    """The job's stdout then stderr (``slurm-<id>.out``/``.err`` in ``folder``, the job file's by default)."""
    parts = [folder / f"slurm-{job_id}.{suffix}" for suffix in ("out", "err")]
    return "".join(f"--- {part.name}\n{part.read_text(errors='replace')}" for part in parts if part.exists())
