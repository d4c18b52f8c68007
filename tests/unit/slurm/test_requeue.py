"""Requeue after a save and stop: task 0 of a SLURM job asks ``scontrol requeue`` (a stub on PATH), once."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from launcher.slurm.requeue import requeue_job, restart_note


def _scontrol(folder: Path, body: str = "") -> dict[str, str]:
    folder.mkdir(exist_ok=True)
    script = folder / "scontrol"
    script.write_text(f"#!{sys.executable}\nimport json, sys\n"
                      f"open({str(folder / 'argv.json')!r}, 'w').write(json.dumps(sys.argv[1:]))\n{body}\n")
    script.chmod(0o755)
    return {"PATH": str(folder)}


def test_task_zero_requeues_its_job(tmp_path: Path) -> None:
    environ = {**_scontrol(tmp_path), "SLURM_JOB_ID": "4711", "SLURM_PROCID": "0"}
    assert requeue_job(environ) == "requeued SLURM job 4711: it resumes from this checkpoint when it runs again"
    assert json.loads((tmp_path / "argv.json").read_text()) == ["requeue", "4711"]


@pytest.mark.parametrize("environ", [{"SLURM_JOB_ID": "4711", "SLURM_PROCID": "1"}, {"SLURM_PROCID": "0"}, {}])
def test_other_tasks_and_jobs_outside_slurm_do_not_requeue(tmp_path: Path, environ: dict[str, str]) -> None:
    assert requeue_job({**_scontrol(tmp_path), **environ}) is None
    assert not (tmp_path / "argv.json").exists()


def test_a_failed_requeue_is_a_warning_line(tmp_path: Path) -> None:
    environ = {**_scontrol(tmp_path, "sys.stderr.write('scontrol: error: Job is no longer pending\\n'); sys.exit(1)"),
               "SLURM_JOB_ID": "9"}
    assert requeue_job(environ) == ("warning: scontrol requeue 9 failed with exit code 1: scontrol: error: Job is no "
                                    "longer pending (submit the job again to go on)")
    assert "scontrol is not on PATH" in str(requeue_job({"PATH": str(tmp_path / "none"), "SLURM_JOB_ID": "9"}))


def test_a_restart_is_noted_once_per_job() -> None:
    job = {"SLURM_JOB_ID": "77", "SLURM_PROCID": "0"}
    assert restart_note({**job, "SLURM_RESTART_COUNT": "2"}) == "resuming: restart 2 of SLURM job 77"
    assert restart_note({**job, "SLURM_RESTART_COUNT": "0"}) is None
    assert restart_note(job) is None
    assert restart_note({**job, "SLURM_PROCID": "3", "SLURM_RESTART_COUNT": "2"}) is None
