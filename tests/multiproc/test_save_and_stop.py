"""Save and stop: SIGUSR1 to the launcher makes every rank checkpoint at one step and the job exit 75; run again,
it goes on from that checkpoint. In a SLURM job (its variables, a stub scontrol), where the signal reaches every
process of the step, the launcher's helpers and the workers ignore it, and task 0 then requeues the job.

The launcher never signals a worker for it (SIGUSR1 in a worker dumps its
stacks): the request goes through the job's store. About 50 s for both on 2
busy cores.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil
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


def _slurm_step(tmp_path: Path, run_env: dict[str, str], job_id: int) -> dict[str, str]:
    """``run_env`` as srun gives it to the one task of a one-node step, with a stub scontrol that records its
    argv and whether the checkpoint was complete when it ran."""
    stubs = tmp_path / "bin"
    stubs.mkdir(exist_ok=True)
    (stubs / "scontrol").write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        f"latest = os.path.exists({str(tmp_path / 'checkpoints' / 'latest')!r})\n"
        f"open({str(stubs / 'scontrol.json')!r}, 'w').write(json.dumps([sys.argv[1:], latest]))\n")
    (stubs / "scontrol").chmod(0o755)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    step = {"SLURM_JOB_ID": str(job_id), "SLURM_STEP_ID": "0", "SLURM_PROCID": "0", "SLURM_LOCALID": "0",
            "SLURM_NODEID": "0", "SLURM_STEP_NODELIST": "localhost", "SLURM_NODELIST": "localhost",
            "SLURM_STEP_NUM_NODES": "1", "SLURM_NNODES": "1", "SLURM_STEP_NUM_TASKS": "1", "SLURM_NTASKS": "1",
            "SLURM_STEP_TASKS_PER_NODE": "1", "SLURM_TASKS_PER_NODE": "1", "SLURMD_NODENAME": "localhost",
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    return {**run_env, **step, "PATH": f"{stubs}{os.pathsep}{run_env.get('PATH', os.defpath)}"}


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
    slurm = stop_signal == "SIGUSR1"  # and the job runs as a SLURM step: it is requeued
    env = _slurm_step(tmp_path, run_env, 4711) if slurm else run_env
    process, lines = _run_until_step(_job(tmp_path, 10**6, stop_signal), env, 3)
    if slurm:  # srun passes it to every process of the step: the launcher's own helpers and workers too
        for member in [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]:
            member.send_signal(signal.SIGUSR1)
    else:
        process.send_signal(getattr(signal, stop_signal))
    rest, _ = process.communicate(timeout=120)
    output = "".join(lines) + rest
    assert process.returncode == EXIT_STOPPED == 75, output

    saved = re.findall(r"\[rank(\d)\]: launcher: checkpoint: saved step (\d+) and stopping", output)
    assert sorted(rank for rank, _ in saved) == ["0", "1"], output
    (step,) = {int(s) for _, s in saved}  # one step, agreed by every rank
    assert f"launcher: {stop_signal}: every rank saves a checkpoint at its next maybe_save" in output
    assert f"launcher: stopped after the checkpoint of step {step}, as asked: run the job again" in output
    assert re.search(r"launcher: 2 ranks stopped after [\d.]+ s, exit code 75", output), output
    assert "most recent call first" not in output  # no worker got the signal (faulthandler would dump stacks)
    folder = tmp_path / "checkpoints" / f"step-{step:09d}"
    assert json.loads((folder / "complete.json").read_text())["step"] == step
    assert (tmp_path / "checkpoints" / "latest").read_text().strip() == folder.name
    for rank in (0, 1):
        assert torch.load(folder / f"rank-{rank:05d}.pt", weights_only=True)["step"] == step
    if not slurm:
        assert "requeue" not in output
        return  # another signal name changes how the request arrives, not what follows
    assert "launcher: requeued SLURM job 4711: it resumes from this checkpoint when it runs again" in output
    assert json.loads((tmp_path / "bin" / "scontrol.json").read_text()) == [["requeue", "4711"], True]

    env = {**_slurm_step(tmp_path, run_env, 4711), "SLURM_RESTART_COUNT": "1"}
    resumed = subprocess.run([sys.executable, "-m", "launcher", str(_job(tmp_path, step + 2))], cwd=tmp_path,
                             env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert "launcher: resuming: restart 1 of SLURM job 4711\n" in resumed.stderr
    for rank in (0, 1):
        assert f"[rank{rank}]: attempt 0 starts at step {step}\n" in resumed.stdout
        assert f"[rank{rank}]: attempt 0 step {step + 2} loss" in resumed.stdout
        assert f"[rank{rank}]: attempt 0 step {step} loss" not in resumed.stdout
