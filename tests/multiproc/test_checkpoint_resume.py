"""A job SIGKILLed after a checkpoint and resumed by a restart ends exactly as the job that never stopped.

``samples/resumable.py`` trains with dropout, shuffling, 2 DataLoader workers
and python/numpy draws in its loss; one rank SIGKILLs itself at a random step
after a checkpoint is complete, ``--max-restarts 1`` restarts the workers, and
they resume from the latest checkpoint (``resume: auto``). Every loss printed
after the resume and the final parameters must be bitwise those of the
uninterrupted run, on 1 and 2 ranks (gloo). About 25-50 s on 2 busy cores.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
STEPS, EVERY = 20, 3

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.own_start_methods,  # how workers start does not change what they compute: the default pass runs it
]


def _job(folder: Path, nprocs: int, kill_at: int, kill_rank: int) -> Path:
    folder.mkdir()
    job = folder / "job.yaml"
    job.write_text(
        f"entrypoint: {SAMPLES / 'resumable.py'}:main\n"
        "seed: 3\n"
        f"kwargs: {{steps: {STEPS}, kill_at: {kill_at}, kill_rank: {kill_rank}}}\n"
        f"world: {{nprocs: {nprocs}, max_restarts: 1}}\n"
        "data: {batch_size: 4, num_workers: 2}\n"
        f"checkpoint: {{dir: checkpoints, every_steps: {EVERY}}}\n"
    )
    return job


def _losses(stdout: str, attempt: int) -> dict[tuple[str, int], str]:
    """(rank, step) → the loss printed in that attempt."""
    pattern = re.compile(rf"^(?:\[rank(\d)\]: )?attempt {attempt} step (\d+) loss (\S+)$", re.MULTILINE)
    return {(rank or "0", int(step)): loss for rank, step, loss in pattern.findall(stdout)}


def _final(stdout: str) -> str:
    (digest,) = re.findall(r"final ([0-9a-f]{64})", stdout)
    return digest


@pytest.mark.parametrize("nprocs", [1, 2])
def test_a_job_killed_after_a_checkpoint_resumes_bitwise(launcher, tmp_path, nprocs):
    chooser = random.Random()
    kill_at, kill_rank = chooser.randint(EVERY + 1, STEPS - 2), chooser.randrange(nprocs)
    whole = launcher([_job(tmp_path / "whole", nprocs, -1, 0)], cwd=tmp_path, timeout=240)
    assert whole.returncode == 0, whole.stderr[-3000:]
    killed = launcher([_job(tmp_path / "killed", nprocs, kill_at, kill_rank)], cwd=tmp_path, timeout=240)
    where = f"(killed rank {kill_rank} at step >= {kill_at})"
    assert killed.returncode == 0, f"{where}\n{killed.stderr[-3000:]}"
    assert f"rank {kill_rank} failed (killed by SIGKILL)" in killed.stderr, where
    assert "; restarting the workers: restart 1 of " in killed.stderr, where

    (resumed_at,) = set(re.findall(r"attempt 1 starts at step (\d+)", killed.stdout))
    assert int(resumed_at) >= EVERY and int(resumed_at) % EVERY == 0, where  # from a checkpoint, not from scratch
    expected = _losses(whole.stdout, 0)
    after = _losses(killed.stdout, 1)
    assert len(expected) == nprocs * STEPS
    assert sorted(after) == sorted(key for key in expected if key[1] > int(resumed_at)), where
    assert {key: expected[key] for key in after} == after, where
    assert _final(killed.stdout) == _final(whole.stdout), where
