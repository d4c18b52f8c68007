"""The local cluster itself: a step across both nodes, and a batch job, run and leave nothing behind.

About 1 s each once the cluster is up (1 s).
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(60)]

SHOW = 'echo "$SLURM_NODEID $SLURM_PROCID $SLURMD_NODENAME $SLURM_JOB_NODELIST $SLURM_NTASKS"'


def test_a_step_runs_one_task_on_each_node(slurm, slurm_env):
    done = slurm.command(["srun", "--nodes=2", "--ntasks=2", "bash", "-c", SHOW], env=slurm_env)
    lines = sorted(done.stdout.splitlines())
    assert lines == ["0 0 127.0.0.1 127.0.0.[1-2] 2", "1 1 127.0.0.2 127.0.0.[1-2] 2"], done.stderr


def test_a_batch_job_runs_its_steps_to_completion(slurm, slurm_env, tmp_path):
    script = tmp_path / "job.sh"
    script.write_text(f"#!/bin/bash\n#SBATCH --nodes=2 --ntasks-per-node=2\nsrun bash -c '{SHOW}'\n"
                      'echo "batch on $SLURMD_NODENAME restarts=${SLURM_RESTART_COUNT:-0}"\n')
    submitted = slurm.command(["sbatch", "--parsable", f"--output={tmp_path / 'out.txt'}", script], env=slurm_env)
    job_id = submitted.stdout.strip().split(";")[0]
    fields = slurm.wait_until_finished(job_id, timeout=30)
    output = (tmp_path / "out.txt").read_text()
    assert (fields["JobState"], fields["ExitCode"]) == ("COMPLETED", "0:0"), output
    assert sorted(output.splitlines()) == [
        "0 0 127.0.0.1 127.0.0.[1-2] 4", "0 1 127.0.0.1 127.0.0.[1-2] 4",
        "1 2 127.0.0.2 127.0.0.[1-2] 4", "1 3 127.0.0.2 127.0.0.[1-2] 4",
        "batch on 127.0.0.1 restarts=0",
    ]
