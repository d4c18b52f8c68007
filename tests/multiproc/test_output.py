"""Worker output as people read it: one prefix per line, whole lines, filters, per-rank files, tee."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)


def test_lines_are_prefixed_once_and_whole(tmp_path, launcher):
    ran = launcher(["--nprocs", 2, "chatty.py"])
    assert ran.returncode == 0, ran.stderr
    for rank in (0, 1):
        assert f"[rank{rank}]: out line one from {rank}\n" in ran.stdout
        assert f"[rank{rank}]: partial from {rank} completed\n" in ran.stdout
        assert f"[rank{rank}]: raw fd write from {rank}\n" in ran.stdout  # C-level writes too
        assert f"[rank{rank}]: progress 2/3\n" in ran.stderr  # a carriage-return bar keeps its final state
        assert ran.stderr.count(f"[rank{rank}]: already prefixed") == 1
        assert f"[rank{rank}]: [rank{rank}]:" not in ran.stderr
    assert all(line.startswith("[rank") for line in ran.stdout.splitlines())


def test_a_single_rank_passes_bytes_through(launcher):
    ran = launcher(["--nprocs", 1, "chatty.py"])
    assert ran.returncode == 0, ran.stderr
    # Every carriage-return state arrives, unprefixed (the capture reads "\r" as a newline).
    assert "\nprogress 0/3\nprogress 1/3\nprogress 2/3\n" in ran.stderr and "[rank0]: progress" not in ran.stderr
    assert "out line one from 0\npartial from 0 completed\n" in ran.stdout


def test_local_ranks_filter_shows_chosen_ranks(launcher):
    ran = launcher(["--nprocs", 3, "--local-ranks-filter", "1", "chatty.py"])
    assert ran.returncode == 0, ran.stderr
    assert "out line one from 1" in ran.stdout
    assert "from 0" not in ran.stdout + ran.stderr and "from 2" not in ran.stdout + ran.stderr


def test_log_dir_keeps_every_rank_and_redirects_hide_the_console(tmp_path, launcher):
    ran = launcher(["--nprocs", 2, "--log-dir", tmp_path / "logs", "--redirects", "1", "chatty.py"])
    assert ran.returncode == 0, ran.stderr
    assert "out line one" not in ran.stdout  # stdout redirected to files only
    assert "[rank0]: progress 2/3" in ran.stderr  # stderr still on the console
    for rank in (0, 1):
        folder = _run_folder(tmp_path / "logs") / "attempt_0" / str(rank)
        assert f"out line one from {rank}\npartial from {rank} completed\n" in (folder / "stdout.log").read_text()
        assert "progress 2/3" in (folder / "stderr.log").read_text()
        assert not (folder / "stdout.pipe").exists() or (folder / "stdout.pipe").is_fifo()


def test_tee_shows_and_keeps(tmp_path, launcher):
    ran = launcher(["--nprocs", 2, "--log-dir", tmp_path / "logs", "--redirects", "3", "--tee", "1", "chatty.py"])
    assert ran.returncode == 0, ran.stderr
    assert "[rank1]: out line one from 1" in ran.stdout and "progress" not in ran.stderr
    assert "progress 2/3" in (_run_folder(tmp_path / "logs") / "attempt_0" / "1" / "stderr.log").read_text()


def _run_folder(log_dir: Path) -> Path:
    """The one run folder a launch made under ``log_dir``."""
    (folder,) = log_dir.iterdir()
    return folder


def test_fork_only_lambda_still_launches_with_a_portability_warning(launcher):
    ran = launcher(["--nprocs", 2, "lambda_collate.py"])
    assert ran.returncode == 0, ran.stderr
    assert "[rank0]: sum 28" in ran.stdout and "[rank1]: sum 28" in ran.stdout
    warnings = [line for line in ran.stderr.splitlines() if line.startswith("launcher: warning:")]
    assert len(warnings) == 1 and "lambda_collate.py:6" in warnings[0] and "spawn" in warnings[0]
