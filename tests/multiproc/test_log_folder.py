"""The log folder: a run never touches another run's files, holds no FIFO, and redirected output is never lost
silently."""

from __future__ import annotations

import re
import shutil
import stat
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)


def test_a_log_dir_used_twice_keeps_both_runs(tmp_path, launcher):
    logs = tmp_path / "logs"
    first = launcher(["--nprocs", 2, "--log-dir", logs, "--rdzv-id", "exp1", "chatty.py"])
    assert first.returncode == 0, first.stderr
    (run_one,) = logs.iterdir()
    kept = {path.relative_to(logs): path.read_bytes() for path in logs.rglob("*") if path.is_file()}
    second = launcher(["--nprocs", 2, "--log-dir", logs, "--rdzv-id", "exp1", "chatty.py"])
    assert second.returncode == 0, second.stderr
    (run_two,) = set(logs.iterdir()) - {run_one}
    assert run_one.name.endswith("-exp1") and run_two.name.startswith(run_one.name[:9])  # same day
    assert {path.relative_to(logs): path.read_bytes() for path in run_one.rglob("*") if path.is_file()} == kept
    for ran, run in ((first, run_one), (second, run_two)):
        assert re.fullmatch(rf"launcher: 2 ranks finished in [\d.]+ s; logs in {re.escape(str(run))}",
                            ran.stderr.splitlines()[-1]), ran.stderr
        assert "out line one from 1" in (run / "attempt_0" / "1" / "stdout.log").read_text()


def test_redirecting_without_a_log_dir_warns_that_the_output_is_discarded(launcher):
    ran = launcher(["--nprocs", 2, "--redirects", "3", "chatty.py"])
    assert ran.returncode == 0, ran.stderr
    assert "out line one" not in ran.stdout + ran.stderr.split("launcher: warning:")[0]
    warnings = [line for line in ran.stderr.splitlines() if line.startswith("launcher: warning: logs.redirects")]
    assert len(warnings) == 1 and "--log-dir" in warnings[0]


def test_no_warning_when_the_redirected_output_goes_to_files(tmp_path, launcher):
    ran = launcher(["--nprocs", 2, "--redirects", "3", "--log-dir", tmp_path, "chatty.py"])
    assert ran.returncode == 0, ran.stderr
    assert "launcher: warning" not in ran.stderr


def _fifos(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if stat.S_ISFIFO(path.lstat().st_mode)]


def test_no_fifo_is_left_after_a_restart_and_the_folder_copies(tmp_path, launcher):
    """The FIFOs that carry each rank's output: a FIFO left behind blocks ``cat`` and ``shutil.copytree``."""
    logs = tmp_path / "logs"
    # No interval ends before the ranks do, so the listing is the same however long an attempt takes: with
    # the default 1 s, a rank alive past its first interval adds the launcher's comparison (world.jsonl).
    ran = launcher(["--nprocs", 2, "--max-restarts", 1, "--log-dir", logs, "--monitor-every", 3600, "restart_once.py"],
                   timeout=120)
    assert ran.returncode == 0, ran.stderr
    (run,) = logs.iterdir()
    assert sorted(path.name for path in run.iterdir()) == ["attempt_0", "attempt_1", "events.jsonl", "metrics",
                                                           "run.json"]
    assert _fifos(logs) == []
    shutil.copytree(logs, tmp_path / "copy")


@pytest.mark.own_start_methods  # spawns in the default pass already
def test_no_fifo_is_left_by_ranks_that_died_before_connecting(tmp_path, launcher):
    """Spawned ranks that exit while their interpreter starts (in ``sitecustomize``) never open their FIFOs."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import os, sys\nif '--multiprocessing-fork' in sys.argv:  # a spawned worker, not a helper\n    os._exit(7)\n")
    logs = tmp_path / "logs"
    ran = launcher(["--start-method", "spawn", "--nprocs", 2, "--log-dir", logs, "--set", f"env.PYTHONPATH={site}",
                    "chatty.py"])
    assert ran.returncode == 7, ran.stderr
    assert _fifos(logs) == []
    shutil.copytree(logs, tmp_path / "copy")
