"""Monitoring on a real 2-rank gloo job: every rank's records (schema, counts, spacing), the launcher's run.json and
events.jsonl, the run folder a checkpointing job gets, and the end-of-run lines."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.unit.runtime.test_monitor import documented_fields

pytestmark = pytest.mark.timeout(120)

INTERVAL = 0.2


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_rank_records_its_loop_and_the_launcher_records_the_run(tmp_path, launcher):
    logs = tmp_path / "logs"
    ran = launcher(["--nprocs", 2, "--log-dir", logs, "--monitor-every", INTERVAL, "--progress", "off",
                    "monitored.py", "--epochs", 3, "--work", 0.02, "--count"])
    assert ran.returncode == 0, ran.stderr
    (run,) = logs.iterdir()
    steps = dict(re.findall(r"^\[rank\d\]: steps (\d) (\d+)$", ran.stdout, flags=re.M))
    assert steps == {"0": "24", "1": "24"}, ran.stdout  # 256 samples / 2 ranks / batches of 16, 3 epochs
    for rank in (0, 1):
        kept = records(run / "metrics" / f"rank_{rank}.jsonl")
        assert all(set(record) == documented_fields() for record in kept)
        assert {(r["rank"], r["local_rank"], r["attempt"]) for r in kept} == {(rank, rank, 0)}
        last = kept[-1]
        assert last["final"] and not any(r["final"] for r in kept[:-1])
        assert (last["step"], last["total_steps"], last["epoch"], last["samples"]) == (24, 24, 2, 384)
        assert last["metrics"]["loss"] > 0 and last["metrics"]["lr"] == 0.05
        training = [r for r in kept[:-1] if r["steps_per_s"] > 0]
        assert training and all(r["samples_per_s"] > 0 and r["cpu_percent"] is not None for r in training)
        # The steps of every interval add up to the loop's count; intervals keep to the setting.
        assert sum(r["steps_per_s"] * r["interval"] for r in kept) == pytest.approx(24, abs=0.5)
        # A loaded machine may delay one record; the thread keeps to its rate (docs/monitoring.md).
        spacing = sorted(r["interval"] for r in kept[:-1])
        assert INTERVAL * 0.8 < spacing[len(spacing) // 2] < INTERVAL * 1.25 and spacing[-1] < 10 * INTERVAL, spacing
        assert [r["step"] for r in kept] == sorted(r["step"] for r in kept)
    events = records(run / "events.jsonl")
    assert [e["event"] for e in events] == ["start", "exit"]
    assert events[0]["nprocs"] == 2 and events[1]["exit_code"] == 0
    summary = json.loads((run / "run.json").read_text())
    assert summary["exit_code"] == 0 and summary["nprocs"] == 2 and summary["settings"]["monitor"]["interval"] == 0.2
    assert summary["command"][:3] == ["python", "-m", "launcher"]
    where, end = ran.stderr.splitlines()[-2:]
    assert where == f"launcher: metrics and events in the run folder (a picture: python -m launcher report {run})"
    assert re.fullmatch(rf"launcher: 2 ranks finished in [\d.]+ s; logs in {re.escape(str(run))}", end), end


def test_a_checkpointing_job_gets_a_run_folder_in_runs_and_quiet_says_nothing(tmp_path, launcher):
    job = tmp_path / "job.yaml"
    sample = Path(__file__).resolve().parents[1] / "samples" / "monitored.py"
    job.write_text(f"entrypoint: {sample}\nargs: [--epochs, '1']\nworld: {{nprocs: 2}}\n"
                   "checkpoint: {dir: ckpt}\nmonitor: {interval: 0.2}\n")
    plan = launcher(["--dry-run", job], cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    assert f"{tmp_path / 'runs'}/" in plan.stdout and "metrics/rank_<R>.jsonl" in plan.stdout
    ran = launcher(["--quiet", job], cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert ran.stderr == ""  # no progress, no summary: the run succeeded
    (run,) = (tmp_path / "runs").iterdir()
    assert (run / "checkpoints").resolve() == (tmp_path / "ckpt").resolve()
    assert {path.name for path in (run / "metrics").iterdir()} == {"rank_0.jsonl", "rank_1.jsonl"}
    failed = launcher(["--quiet", job, "--", "--epochs", "x"], cwd=tmp_path)
    assert failed.returncode == 2 and "checkpoints in" in failed.stderr  # a failure is always summed up
