"""Worker output as people read it: one prefix per line, whole lines, filters, per-rank files, tee."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.supervise.lines import PENDING_LIMIT

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


def _long_output() -> tuple[str, str]:
    """What ``long_output.py``'s rank 0 writes: the carriage-return updates, and the long line."""
    updates = "".join(f"\rstep {step + 1}/20000" for step in range(20000))
    line = "".join(str(at // 10_000 % 10) * 10_000 for at in range(0, 200_000, 10_000))
    return updates, line


def test_a_long_line_and_many_updates_come_out_whole_in_pieces(tmp_path, launcher):
    ran = launcher(["--nprocs", 2, "--log-dir", tmp_path / "logs", "long_output.py"])
    assert ran.returncode == 0, ran.stderr
    updates, line = _long_output()
    pieces = [line[at:at + PENDING_LIMIT] for at in range(0, len(line), PENDING_LIMIT)]  # 64 KiB each, then the rest
    assert [text for text in ran.stdout.splitlines() if text.startswith("[rank0]")] == [
        "[rank0]: step 20000/20000", *(f"[rank0]: {piece}" for piece in pieces)]
    assert "[rank1]: rank 1 is here\n" in ran.stdout
    log = _run_folder(tmp_path / "logs") / "attempt_0" / "0" / "stdout.log"
    assert log.read_bytes() == f"{updates}\n{line}".encode()  # the file gets the bytes as written


def test_a_single_rank_passes_a_long_line_and_many_updates_through(launcher):
    ran = launcher(["--nprocs", 1, "long_output.py"])
    assert ran.returncode == 0, ran.stderr
    updates, line = _long_output()
    # Every byte, in order (the capture reads "\r" as a newline); the open line is ended when the rank exits.
    assert ran.stdout == f"{updates}\n{line}\n".replace("\r", "\n")


def test_prefix_template_as_torchrun_applies_it(tmp_path, launcher, torchrun):
    """TORCHELASTIC_LOG_LINE_PREFIX_TEMPLATE: the same prefix as torchrun's, with one rank too."""
    env = {"TORCHELASTIC_LOG_LINE_PREFIX_TEMPLATE": "<${role_name}|${local_rank}|${rank}|${unknown}> "}
    ours = launcher(["--nprocs", 1, "--role", "trainer", "chatty.py"], env=env)
    theirs = torchrun(["--standalone", "--nproc-per-node", 1, "--role", "trainer", "--tee", 3,
                       "--log-dir", tmp_path / "torch", "chatty.py"], env=env)
    assert ours.returncode == 0 and theirs.returncode == 0, ours.stderr + theirs.stderr
    head = "<trainer|0|0|${unknown}> "
    for ran in (ours, theirs):
        assert f"{head}out line one from 0\n" in ran.stdout and f"{head}raw fd write from 0\n" in ran.stdout
        assert f"{head}[rank0]: already prefixed\n" in ran.stderr  # the template's prefix goes on every line
    # Lines that torchrun's tailing may cut, or prints with every carriage-return state: ours whole, final.
    assert f"{head}partial from 0 completed\n" in ours.stdout and f"{head}progress 2/3\n" in ours.stderr


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
        assert sorted(path.name for path in folder.iterdir()) == ["stderr.log", "stdout.log"]  # no FIFO left


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
