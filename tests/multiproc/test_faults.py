"""The fault matrix: every failure mode ends fast, names its root cause, and leaves no process behind.

Each case runs with the default start method and with spawn forced. Bounds on
time are behaviour (the grace period is honoured, not a fixed 30 s), not speed
goals: those are measured by benchmarks/failure_latency.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from launcher.testing.processes import TAG_VARIABLE, tagged_processes

SAMPLES = Path(__file__).resolve().parents[1] / "samples"

pytestmark = pytest.mark.timeout(120)
START_METHODS = ["auto", "spawn"]


@pytest.fixture(params=START_METHODS)
def start_method(request) -> str:  # type: ignore[no-untyped-def]
    return str(request.param)


def _summary(stderr: str) -> str:
    return stderr[stderr.index("launcher: job"):] if "launcher: job" in stderr else ""


@pytest.mark.parametrize(("mode", "code", "expected"), [
    ("raise", 1, ["RuntimeError: rank one broke down", "in fail_in_rank_one"]),
    ("segfault", 128 + signal.SIGSEGV, ["killed by SIGSEGV", "Segmentation fault"]),
])
def test_rank_failure_stops_the_job(mode, code, expected, start_method, tmp_path, launcher):
    ran = launcher(["--start-method", start_method, "--nprocs", 2, "faults.py", mode, tmp_path])
    assert ran.returncode == code, ran.stderr
    summary = _summary(ran.stderr)
    assert summary.startswith("launcher: job failed: rank 1 (local 1 on ")
    for fragment in expected:
        assert fragment in summary, summary
    assert "rank 0 (local 0" in summary and "stopped by the launcher" in summary


def test_function_entrypoint_failure_names_the_function(start_method, tmp_path, launcher):
    ran = launcher(["--start-method", start_method, "--nprocs", 2, "funcs_fail.py:explode_on_one"])
    assert ran.returncode == 1, ran.stderr
    summary = _summary(ran.stderr)
    assert "KeyError: 'missing shard on rank one'" in summary and "in explode_on_one" in summary


def test_rank_ignoring_sigterm_is_killed_after_the_grace_period(start_method, tmp_path, launcher):
    began = time.monotonic()
    ran = launcher(["--start-method", start_method, "--shutdown-timeout", "1", "--nprocs", 2,
                    "faults.py", "ignore_sigterm", tmp_path])
    elapsed = time.monotonic() - began
    assert ran.returncode == 1, ran.stderr
    assert "stopped by the launcher (SIGKILL)" in _summary(ran.stderr)
    assert elapsed < 20  # torchrun waits a fixed 30 s here


def test_children_of_a_failed_rank_are_stopped(start_method, tmp_path, launcher, token):
    ran = launcher(["--start-method", start_method, "--nprocs", 2, "faults.py", "orphan_child", tmp_path])
    assert ran.returncode == 1, ran.stderr
    for rank in (0, 1):
        pid = int((tmp_path / f"child{rank}").read_text())
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_hang_watchdog_dumps_stacks_and_exits_124(start_method, tmp_path, launcher):
    ran = launcher(["--start-method", start_method, "--hang-timeout", "2", "--hang-startup", "60", "--nprocs", 2,
                    "faults.py", "hang", tmp_path], timeout=90)
    assert ran.returncode == 124, ran.stderr
    assert "launcher: job stopped: rank" in ran.stderr and "made no progress" in ran.stderr
    assert f"line {_line_of('        time.sleep(3600)')} in hang_here" in ran.stderr  # rank 1's stack, by faulthandler
    assert f"faults.py\", line {_line_of('# rank 0 waits here')} in <module>" in ran.stderr  # rank 0's, in the barrier


def _line_of(fragment: str) -> int:
    """The first line of the fault sample that holds ``fragment``."""
    lines = (SAMPLES / "faults.py").read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if fragment in line)


def _start(tmp_path: Path, run_env: dict[str, str], *args: str, session: bool = False) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, "-m", "launcher", *args], cwd=SAMPLES, env=run_env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=session)
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready{r}").exists() for r in (0, 1)):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the workers never became ready"
        time.sleep(0.02)
    return process


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_launcher_interrupted(sig, code, start_method, tmp_path, run_env):
    process = _start(tmp_path, run_env, "--start-method", start_method, "--nprocs", "2", "faults.py", "wait",
                     str(tmp_path))
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == code, stderr
    assert f"stopped by {sig.name}" in stderr
    assert tagged_processes(run_env[TAG_VARIABLE]) == []  # gone as the launcher exits


def test_ctrl_c_reaches_the_job_once_and_the_grace_period_holds(start_method, tmp_path, run_env):
    """A terminal's Ctrl-C signals the launcher's whole process group. A second signal would skip the
    grace period; the workers' SIGTERM handlers must get to finish their cleanup."""
    process = _start(tmp_path, run_env, "--start-method", start_method, "--nprocs", "2", "faults.py",
                     "clean_up_on_sigterm", str(tmp_path), session=True)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert sorted(p.name for p in tmp_path.glob("cleaned*")) == ["cleaned0", "cleaned1"], stderr
    assert tagged_processes(run_env[TAG_VARIABLE]) == []


def test_launcher_sigkilled_leaves_nothing_within_10_seconds(start_method, tmp_path, run_env):
    process = _start(tmp_path, run_env, "--start-method", start_method, "--nprocs", "2", "faults.py",
                     "children_wait", str(tmp_path))
    process.kill()
    process.communicate(timeout=30)
    left = tagged_processes(run_env[TAG_VARIABLE])
    _, alive = psutil.wait_procs(left, timeout=10)
    assert alive == []


def test_restarts_are_reported_and_counted(tmp_path, launcher):
    script = tmp_path / "flaky.py"
    script.write_text(
        "import os, sys\n"
        "attempt = int(os.environ['TORCHELASTIC_RESTART_COUNT'])\n"
        "open(os.path.join(sys.argv[1], f\"attempt{attempt}-rank{os.environ['RANK']}\"), 'w').close()\n"
        "if attempt < 2 and os.environ['RANK'] == '1':\n"
        "    sys.exit(7)\n"
    )
    ran = launcher(["--max-restarts", 3, "--nprocs", 2, script, tmp_path], cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert ran.stderr.count("restarting the workers") == 2
    assert "rank 1 (exit code 7) failed; restarting the workers (attempt 2 of 4)" in ran.stderr
    assert sorted(p.name for p in tmp_path.glob("attempt*")) == [
        f"attempt{a}-rank{r}" for a in range(3) for r in range(2)
    ]


def test_restarts_run_out(tmp_path, launcher):
    script = tmp_path / "broken.py"
    script.write_text("import sys\nsys.exit(7)\n")
    ran = launcher(["--max-restarts", 1, "--nprocs", 2, script], cwd=tmp_path)
    assert ran.returncode == 7 and ran.stderr.count("restarting the workers") == 1


def test_launcher_sigkilled_leaves_no_temporary_folders(tmp_path, run_env):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    process = _start(tmp_path, {**run_env, "TMPDIR": str(scratch)}, "--nprocs", "2", "faults.py", "wait",
                     str(tmp_path))
    process.kill()
    process.communicate(timeout=30)
    _, alive = psutil.wait_procs(tagged_processes(run_env[TAG_VARIABLE]), timeout=10)
    assert alive == []
    assert list(scratch.iterdir()) == []  # the reaper removed the private dir and multiprocessing's
