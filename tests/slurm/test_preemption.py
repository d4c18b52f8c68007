"""Preemption and cancellation of 2-node x 2-rank jobs submitted with ``launcher sbatch --submit``.

``scancel --signal=USR1 --batch`` (what SLURM sends ahead of a preemption or the time limit, ``#SBATCH
--signal=B:USR1@S``) makes every rank save a checkpoint at one step; the job is requeued and its next run
resumes from that checkpoint: every loss, and the final parameters, bitwise those of the job that ran
uninterrupted (which runs beside them), in each mode (one launcher per node, one task per rank). ``scancel``
stops everything within SLURM's grace period (KillWait: 30 s in the test cluster), with no process left on any
node. ``samples/resumable.py`` holds at a known step (its ``hold_at``) until the launcher asks it to save, so
the preemption always lands at that step. Measured with pytest -n 2 on 2 cores that other test runs kept at a
load of 20: the preemption about 80 s (three jobs of 4 ranks side by side; a requeued job waits 5 s before it
may start again), scancel about 20 s.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import pytest

from launcher.testing.processes import wait_until_gone
from tests.slurm.cluster import FINISHED, LocalSlurm
from tests.slurm.jobs import output, submit

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
NODES, PER_NODE = 2, 2
WORLD = NODES * PER_NODE
STEPS, HOLD_AT = 9, 4

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(180)]


LAYOUTS = {  # the same world of 2 x 2 ranks
    "per_node": f"world: {{nprocs: {PER_NODE}}}\nslurm: {{mode: per_node, requeue: true}}\n",
    "per_task": f"slurm: {{mode: per_task, ntasks_per_node: {PER_NODE}, requeue: true}}\n",
}


def _job(folder: Path, hold_at: int, mode: str = "per_node") -> Path:
    folder.mkdir()
    job = folder / "job.yaml"
    job.write_text(
        f"entrypoint: {SAMPLES / 'resumable.py'}:main\n"
        "seed: 3\n"
        f"kwargs: {{steps: {STEPS}, hold_at: {hold_at}, fixed_buckets: true}}\n"  # 4 ranks: see resumable.py
        "data: {batch_size: 4, num_workers: 0}\n"
        "checkpoint: {dir: checkpoints, every_steps: 1000}\n"
        f"{LAYOUTS[mode]}"
    )
    return job


def _wait_for_output(folder: Path, job_id: str, slurm: LocalSlurm, pattern: str, count: int,
                     timeout: float) -> str:
    """Poll the job's output until ``pattern`` is in it ``count`` times; fails if the job ends first."""
    deadline = time.monotonic() + timeout
    while True:
        text = output(folder, job_id)
        if len(re.findall(pattern, text, re.MULTILINE)) >= count:
            return text
        state = slurm.job(job_id)["JobState"]
        assert state not in FINISHED and time.monotonic() < deadline, f"{state}\n{text}"
        time.sleep(0.1)


def _losses(text: str) -> Counter[tuple[int, str]]:
    """(step, loss) of every line a rank printed (per_task: SLURM's tasks print without a rank prefix)."""
    found = re.findall(r"^(?:\[rank\d\]: )?attempt 0 step (\d+) loss (\S+)$", text, re.MULTILINE)
    return Counter((int(step), loss) for step, loss in found)


def _final(text: str) -> str:
    (digest,) = re.findall(r"final ([0-9a-f]{64})", text)
    return digest


@pytest.mark.timeout(240)
def test_jobs_preempted_in_each_mode_checkpoint_are_requeued_and_end_as_if_never_stopped(slurm, slurm_env, tmp_path):
    whole_job = _job(tmp_path / "whole", -1, "per_task")  # what the ranks compute does not depend on the mode
    whole = submit(whole_job, ["--nodes", NODES], slurm_env)
    preempted = {}
    for mode in sorted(LAYOUTS):
        job = _job(tmp_path / mode, HOLD_AT, mode)
        preempted[mode] = job, submit(job, ["--nodes", NODES], slurm_env)
    for job, job_id in preempted.values():
        _wait_for_output(job.parent, job_id, slurm, rf"holding at step {HOLD_AT}$", WORLD, 120)
        slurm.command(["scancel", "--signal=USR1", "--batch", job_id], env=slurm_env)

    whole_fields = slurm.wait_until_finished(whole, timeout=90)
    whole_text = output(whole_job.parent, whole)
    assert (whole_fields["JobState"], whole_fields["Restarts"]) == ("COMPLETED", "0"), whole_text
    expected = _losses(whole_text)
    assert sum(expected.values()) == WORLD * STEPS, whole_text
    for mode, (job, job_id) in preempted.items():
        # every rank is waiting in maybe_save: the checkpoint follows the notice at once
        _wait_for_output(job.parent, job_id, slurm, r"launcher: checkpoint: saved step", WORLD, 20)
        fields = slurm.wait_until_finished(job_id, timeout=90)
        text = f"{mode}\n{output(job.parent, job_id)}"
        assert (fields["JobState"], fields["ExitCode"], fields["Restarts"]) == ("COMPLETED", "0:0", "1"), text
        saved = re.findall(r"launcher: checkpoint: saved step (\d+) and stopping", text)
        assert saved == [str(HOLD_AT)] * WORLD, text  # every rank, at the step rank 0 named
        assert f"restart 1 of SLURM job {job_id}" in text, text  # SLURM_RESTART_COUNT, logged by the requeued run
        resumed = re.findall(rf"^(?:\[rank\d\]: )?attempt 0 starts at step {HOLD_AT}$", text, re.MULTILINE)
        assert len(resumed) == WORLD, text  # every rank, from the checkpoint
        # steps 1..HOLD_AT from the first run, the rest from the requeued one
        assert _losses(text) == expected, text
        assert _final(text) == _final(whole_text), text


def test_scancel_stops_every_process_of_the_job_within_the_grace_period(slurm, slurm_env, tmp_path, token):
    job = _job(tmp_path / "cancelled", HOLD_AT)
    job_id = submit(job, ["--nodes", NODES], slurm_env)
    _wait_for_output(job.parent, job_id, slurm, rf"holding at step {HOLD_AT}$", WORLD, 90)
    slurm.command(["scancel", job_id], env=slurm_env)
    # SLURM SIGKILLs what is left after KillWait (30 s): gone before that, the launchers stopped their workers.
    _, alive = wait_until_gone(token, timeout=25, poll=0.05)
    assert not alive, [(process.pid, process.name()) for process in alive]
    fields = slurm.wait_until_finished(job_id, timeout=30)
    text = output(job.parent, job_id)
    assert fields["JobState"] == "CANCELLED", text
    assert text.count("launcher: stopped by SIGTERM; every worker was stopped") == NODES, text
