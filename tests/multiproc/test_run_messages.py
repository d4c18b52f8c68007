"""What the launcher says at the end of a run, through the real CLI: one line on stderr for every run (the script's
stdout stays its own), what a function job returned, a one-rank failure not shown twice, and exit code 2 from a
script's own argument parser told apart from the launcher's."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.timeout(120)

FAILING = (
    "import argparse\n"
    "parser = argparse.ArgumentParser()\n"
    "parser.add_argument('--epochs', type=int, default=1)\n"
    "args = parser.parse_args()\n"
    "print('step 1', flush=True)\n"
    "def load(step):\n"
    "    raise ValueError(f'corrupt sample at step {step}')\n"
    "load(3)\n"
)


def test_a_function_job_says_what_ran_and_what_it_returned(tmp_path, launcher):
    ran = launcher(["--nprocs", 4, "--log-dir", tmp_path / "logs", "funcs.py:record", tmp_path / "out"])
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == ""  # the end of the run goes to stderr
    (run,) = (tmp_path / "logs").iterdir()
    *_, returned, end = ran.stderr.splitlines()
    assert returned == "launcher: rank 0 returned 0, rank 1 returned 10, rank 2 returned 20, rank 3 returned 30"
    assert re.fullmatch(rf"launcher: 4 ranks finished in [\d.]+ s; logs in {re.escape(str(run))}", end), end


def test_one_failing_rank_shows_its_traceback_once(tmp_path, launcher):
    (tmp_path / "bad.py").write_text(FAILING)
    ran = launcher(["bad.py"], cwd=tmp_path)
    assert ran.returncode == 1, ran.stderr
    assert ran.stdout == "step 1\n"
    assert ran.stderr.count('in load\n') == 1, ran.stderr  # the rank's own traceback, passed through as it was
    *_, failed, end = ran.stderr.splitlines()
    assert re.fullmatch(r"launcher: job failed at [\d:.]+: rank 0 \(local 0 on [^)]*\) exit code 1: ValueError: "
                        r"corrupt sample at step 3; its output is above", failed), ran.stderr
    assert re.fullmatch(r"launcher: 1 rank failed after [\d.]+ s, exit code 1", end), end


def test_a_launcher_flag_after_the_target_is_named(tmp_path, launcher):
    (tmp_path / "bad.py").write_text(FAILING)
    ran = launcher(["bad.py", "--epochs", 2, "--nprocs", 2], cwd=tmp_path)
    assert ran.returncode == 2, ran.stderr
    assert "bad.py: error: unrecognized arguments: --nprocs 2" in ran.stderr
    assert ("launcher: fix: --nprocs is a launcher flag, but came after the target and so went to the script: put "
            "it before the target") in ran.stderr.splitlines(), ran.stderr
