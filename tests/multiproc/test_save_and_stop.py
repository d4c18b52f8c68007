"""Save and stop: SIGUSR1 to the launcher makes every rank checkpoint at one step and the job exit 75; run again,
it goes on from that checkpoint.

The launcher never signals a worker for it (SIGUSR1 in a worker dumps its
stacks): the request goes through the job's store. About 50 s for both on 2
busy cores.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from launcher.errors import EXIT_STOPPED

SAMPLES = Path(__file__).resolve().parents[1] / "samples"

pytestmark = pytest.mark.timeout(180)


def _job(tmp_path: Path, steps: int, stop_signal: str = "SIGUSR1") -> Path:
    job = tmp_path / f"job{steps}.yaml"
    job.write_text(
        f"entrypoint: {SAMPLES / 'resumable.py'}:main\n"
        "seed: 3\n"
        f"kwargs: {{steps: {steps}}}\n"
        "world: {nprocs: 2}\n"
        "data: {batch_size: 4, num_workers: 0}\n"
        f"checkpoint: {{dir: checkpoints, every_steps: 1000, stop_signal: {stop_signal}}}\n"
    )
    return job


def _run_until_step(job: Path, run_env: dict[str, str], step: int) -> tuple[subprocess.Popen[str], list[str]]:
    """Start the launcher; return once both ranks printed ``step`` (the output read so far with it)."""
    process = subprocess.Popen([sys.executable, "-m", "launcher", str(job)], cwd=job.parent, env=run_env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    seen, lines = set(), []
    for line in process.stdout:
        lines.append(line)
        match = re.match(rf"\[rank(\d)\]: attempt 0 step {step} loss", line)
        if match:
            seen.add(match.group(1))
            if seen == {"0", "1"}:
                return process, lines
    raise AssertionError("".join(lines))


@pytest.mark.parametrize("stop_signal", ["SIGUSR1", "SIGUSR2"])  # SIGUSR2 also tells the agent the launcher is gone
def test_the_stop_signal_saves_every_rank_at_one_step_then_the_job_resumes_from_it(tmp_path, run_env, stop_signal):
    process, lines = _run_until_step(_job(tmp_path, 10**6, stop_signal), run_env, 3)
    process.send_signal(getattr(signal, stop_signal))
    rest, _ = process.communicate(timeout=120)
    output = "".join(lines) + rest
    assert process.returncode == EXIT_STOPPED == 75, output

    saved = re.findall(r"\[rank(\d)\]: launcher: checkpoint: saved step (\d+) and stopping", output)
    assert sorted(rank for rank, _ in saved) == ["0", "1"], output
    (step,) = {int(s) for _, s in saved}  # one step, agreed by every rank
    assert f"launcher: {stop_signal}: every rank saves a checkpoint at its next maybe_save" in output
    assert f"launcher: stopped after the checkpoint of step {step}, as asked (exit 75)" in output
    assert "most recent call first" not in output  # no worker got the signal (faulthandler would dump stacks)
    folder = tmp_path / "checkpoints" / f"step-{step:09d}"
    assert json.loads((folder / "complete.json").read_text())["step"] == step
    assert (tmp_path / "checkpoints" / "latest").read_text().strip() == folder.name
    for rank in (0, 1):
        assert torch.load(folder / f"rank-{rank:05d}.pt", weights_only=True)["step"] == step
    if stop_signal != "SIGUSR1":
        return  # another signal name changes how the request arrives, not what follows

    resumed = subprocess.run([sys.executable, "-m", "launcher", str(_job(tmp_path, step + 2))], cwd=tmp_path,
                             env=run_env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    for rank in (0, 1):
        assert f"[rank{rank}]: attempt 0 starts at step {step}\n" in resumed.stdout
        assert f"[rank{rank}]: attempt 0 step {step + 2} loss" in resumed.stdout
        assert f"[rank{rank}]: attempt 0 step {step} loss" not in resumed.stdout
