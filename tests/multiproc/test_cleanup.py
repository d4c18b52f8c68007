"""Nothing outlives a job: not after a SIGKILL of the launcher's whole process group, at any moment of the
launch (``kill -9 -PGID``, as CI runners and schedulers stop a job), nor a daemon a rank started.

Each SIGKILL lands at a moment the launch reached, told by its trace marks
(``launcher/trace.py``) or by the workers' ready files, never by a sleep. Then the
reaper, in a process group of its own, must leave no process with the test's tag,
no folder in the launcher's private TMPDIR, and no traceback in its stderr. Each
case runs with the default start method and with spawn (the agent in the launcher).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from launcher.testing.processes import TAG_VARIABLE, tagged_processes, wait_until_gone

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
START_METHODS = ["auto", "spawn"]

pytestmark = [pytest.mark.timeout(120), pytest.mark.own_start_methods]


@pytest.fixture(params=START_METHODS)
def start_method(request) -> str:  # type: ignore[no-untyped-def]
    return str(request.param)


@pytest.fixture
def scratch() -> Iterator[Path]:
    """The launcher's TMPDIR: private, and short (under a long one the server's socket folder goes to /tmp)."""
    folder = Path(tempfile.mkdtemp(prefix="cleanup-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _marked(marks: Path, label: str) -> bool:
    """Whether some process of the launch reached ``label`` (``launcher.trace``)."""
    for file in marks.glob("marks-*.tsv"):
        try:
            if any(line.endswith(f"\t{label}") for line in file.read_text().splitlines()):
                return True
        except OSError:
            continue
    return False


def _ready(out: Path, *names: str) -> Callable[[], bool]:
    return lambda: all((out / name).exists() for name in names)


MOMENTS = {  # moment → the trace mark that tells it (None: the workers' ready files)
    "reaper started": "launcher: start reaper",
    "server started": "launcher: start forkserver",
    "plan ready": "launcher: prepare end",
    "workers starting": "agent: start workers start",
    "workers running": None,
    "daemons running": None,
}


def _start(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.Popen[bytes]:
    with open(tmp_path / "stdout.txt", "wb") as out, open(tmp_path / "stderr.txt", "wb") as err:
        return subprocess.Popen([sys.executable, "-m", "launcher", *args], cwd=SAMPLES, env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)


def _wait_for(reached: Callable[[], bool], process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while not reached():
        assert process.poll() is None, f"the launcher ended (code {process.returncode}) before {what}"
        assert time.monotonic() < deadline, f"the launch never reached: {what}"
        time.sleep(0.002)


def _assert_nothing_left(tag: str, scratch: Path, tmp_path: Path) -> None:
    _, alive = wait_until_gone(tag, timeout=20, poll=0.05)
    assert alive == [], f"processes left: {[(p.pid, p.cmdline()) for p in alive]}"
    assert sorted(p.name for p in scratch.iterdir()) == []  # launcher-*, pymp-*: removed after the processes
    stderr = (tmp_path / "stderr.txt").read_text()
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_a_sigkill_of_the_launchers_group_leaves_nothing(moment, start_method, tmp_path, scratch, run_env):
    if moment == "server started" and start_method == "spawn":
        pytest.skip("under spawn no server starts early")
    marks, out = tmp_path / "marks", tmp_path / "out"
    marks.mkdir(), out.mkdir()
    env = {**run_env, "TMPDIR": str(scratch), "LAUNCHER_TRACE_DIR": str(marks)}
    job = ["daemon.py", str(out), "wait"] if moment == "daemons running" else ["faults.py", "wait", str(out)]
    process = _start(["--start-method", start_method, "--nprocs", "2", *job], env, tmp_path)
    label = MOMENTS[moment]
    _wait_for((lambda: _marked(marks, label)) if label else _ready(out, "ready0", "ready1"), process, moment)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    _assert_nothing_left(run_env[TAG_VARIABLE], scratch, tmp_path)


def test_a_sigkill_of_the_launcher_alone_stops_the_job_and_its_daemons(start_method, tmp_path, scratch, run_env):
    """The server and the agent live on without the launcher: the reaper tells the agent, then kills by tag."""
    out = tmp_path / "out"
    out.mkdir()
    process = _start(["--start-method", start_method, "--nprocs", "2", "daemon.py", str(out), "wait"],
                     {**run_env, "TMPDIR": str(scratch)}, tmp_path)
    _wait_for(_ready(out, "ready0", "ready1"), process, "workers running")
    process.kill()
    process.wait()
    _assert_nothing_left(run_env[TAG_VARIABLE], scratch, tmp_path)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_daemons_ranks_started_are_stopped_with_the_job(start_method, tmp_path, launcher, token):
    """A job that succeeds; a rank that starts a daemon and then fails is a row of the fault matrix."""
    ran = launcher(["--start-method", start_method, "--nprocs", 2, "daemon.py", tmp_path, "ok"])
    assert ran.returncode == 0, ran.stderr
    daemons = [int((tmp_path / f"daemon{rank}").read_text()) for rank in (0, 1)]
    assert [pid for pid in daemons if not _gone(pid)] == []  # stopped before the launcher returned
    assert "BrokenPipeError" not in ran.stderr and "unexpected pid" not in ran.stderr, ran.stderr
    assert "Traceback" not in ran.stderr, ran.stderr


@pytest.mark.parametrize(("case", "code"), [("dry run", 0), ("preflight fails", 2)])
def test_a_launch_that_does_not_happen_leaves_nothing(case, code, tmp_path, scratch, launcher, run_env):
    """Bad input (a typo in the job file) is a row of the fault matrix."""
    marks = tmp_path / "marks"
    marks.mkdir()
    (tmp_path / "broken.py").write_text("def broken(:\n")
    args = {"dry run": ["--dry-run", "--nprocs", 2, "env_dump.py", tmp_path],
            "preflight fails": ["--nprocs", 2, tmp_path / "broken.py"]}[case]
    ran = launcher(args, env={"TMPDIR": str(scratch), "LAUNCHER_TRACE_DIR": str(marks)})
    assert ran.returncode == code, ran.stderr
    assert tagged_processes(run_env[TAG_VARIABLE]) == []  # at once: the launcher stopped its helpers itself
    assert list(scratch.iterdir()) == []
    assert _marked(marks, "launcher: start reaper") == (case != "dry run")  # stopped; a dry run starts none
