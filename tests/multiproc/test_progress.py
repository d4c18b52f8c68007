"""The progress line of a real run: redrawn in place on a terminal, plain lines elsewhere, the slow rank named.

The ranks' monitors write the records (``samples/monitored.py``, a real training loop): rank 1 takes twice
as long per step as rank 0.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from launcher.testing.terminal import run_in_terminal, screen_lines
from tests.conftest import SAMPLES

pytestmark = pytest.mark.timeout(120)

JOB = ["--nprocs", 2, "--monitor-every", 0.25, "monitored.py", "--epochs", 4, "--work", 0.05,
       "--slow-rank", 1, "--slow-factor", 2, "--say-every", 8]  # 8 steps an epoch
WORKER_LINES = [f"[rank0]: worker line at step {step} of rank 0" for step in (8, 16, 24, 32)]


def test_on_a_terminal_the_bar_redraws_in_place_below_whole_worker_lines(run_env: dict[str, str]) -> None:
    ran = run_in_terminal([sys.executable, "-m", "launcher", *map(str, JOB)], cwd=SAMPLES, env=run_env, timeout=90)
    assert ran.returncode == 0, ran.output
    screen = [line for line in screen_lines(ran.output) if line]
    bars = [line for line in screen if line.startswith("step ")]
    # One bar line is left, the last state, after every worker line (each whole, once); then the summary.
    assert bars == [screen[len(WORKER_LINES)]], screen
    assert screen[:len(WORKER_LINES)] == WORKER_LINES
    assert bars[0].startswith("step 32/32 100%|") and "samples/s" in bars[0] and ", loss " in bars[0]
    drawn = ran.output.count("\rstep ")
    assert drawn >= 4, ran.output  # drawn again and again on the same line, no new line per update
    assert "slowest: rank 1 at 0." in ran.output  # the slow rank, named on the bar while both ran


def test_without_a_terminal_plain_lines_and_the_world_records_name_the_slow_rank(tmp_path: Path, launcher) -> None:
    ran = launcher(["--log-dir", tmp_path / "logs", "--set", "monitor.lines_every=0.5", *JOB])
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == WORKER_LINES
    progress = [line for line in ran.stderr.splitlines() if line.startswith("launcher: step ")]
    assert len(progress) >= 2 and progress[-1].startswith("launcher: step 32/32 (100%), epoch 3, ")
    assert any("; slowest: rank 1 at 0." in line for line in progress), progress
    assert not any(char < " " for char in ran.stderr.replace("\n", ""))  # no carriage returns, no escapes
    (run_folder,) = (tmp_path / "logs").iterdir()
    world = [json.loads(line) for line in (run_folder / "world.jsonl").read_text().splitlines()]
    assert world and all(1 <= record["ranks"] <= 2 for record in world)
    named = {record["slowest"]["rank"] for record in world if record["slowest"] is not None}
    assert named == {1}, world  # the slowed rank, and never the other
    both = [record for record in world if record["ranks"] == 2 and record["samples_per_s"] is not None]
    assert both and all(record["samples_per_s"]["min"] < record["samples_per_s"]["max"] for record in both)
