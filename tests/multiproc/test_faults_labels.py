"""Labels of the fault matrix (test_fault_matrix.py) that need more than one run or a closer look.

- two ranks raising at the same moment are both failures of their own (20 runs in a row);
- the hang watchdog names the rank outside a collective, with its stack, not the first idle one (rank 0
  stuck here, rank 1 in the matrix), and keeps every rank's stacks in the log folder;
- workers start with a fresh Python's signal dispositions, whatever the launcher inherited (``nohup``,
  ``cmd &``) or the agent set (``--start-method fork``): a SIGINT raises KeyboardInterrupt in them;
- a rank that dies of a signal the launcher did not send while the launcher stops the job is not "stopped by
  the launcher";
- ``-- train.py args``: a ``--`` before the script, as torchrun accepts it.
Each runs with the default start method and with spawn forced (fork too where it matters).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from launcher.testing.processes import TAG_VARIABLE, tagged_processes

SAMPLES = Path(__file__).resolve().parents[1] / "samples"

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(params=[pytest.param(method, marks=pytest.mark.own_start_methods) for method in ("default", "spawn")])
def start_flags(request) -> list[str]:  # type: ignore[no-untyped-def]
    """No flag (the default, or CI's PET_START_METHOD), or spawn forced."""
    return [] if request.param == "default" else ["--start-method", str(request.param)]


def _summary(stderr: str) -> str:
    return stderr[stderr.index("launcher: job"):] if "launcher: job" in stderr else ""


@pytest.mark.timeout(600)
def test_ranks_raising_at_the_same_moment_each_failed_on_their_own(start_flags, tmp_path, launcher):
    """No rank exits before every rank wrote its error file; so the launcher stops a rank (if it is still
    alive) only after it raised: each is a failure of its own, the earliest the root cause. 20 runs."""
    for run in range(20):
        out = tmp_path / str(run)
        out.mkdir()
        ran = launcher([*start_flags, "--nprocs", 2, "labels.py", "both_raise", out])
        summary = _summary(ran.stderr)
        assert ran.returncode == 1, (run, ran.stderr)
        assert "stopped by the launcher" not in summary, (run, summary)
        for rank in (0, 1):
            assert f"rank {rank} (local {rank} on " in summary, (run, summary)
            assert f"exit code 1: RuntimeError: rank {rank} broke down" in summary, (run, summary)


def test_a_rank_dead_of_a_signal_the_launcher_did_not_send_is_not_called_stopped(start_flags, tmp_path, launcher):
    """Rank 0 still runs when the launcher begins to stop the job (rank 1 raised), and dies of a SIGKILL the
    launcher did not send (as a rank that SIGKILLed itself but was not reaped yet): its own end, not the stop's."""
    ran = launcher([*start_flags, "--nprocs", 2, "labels.py", "dies_when_stopped", tmp_path])
    assert ran.returncode == 1, ran.stderr
    summary = _summary(ran.stderr)
    assert re.match(r"launcher: job failed at [\d:.]+: rank 1 \(local 1 .*RuntimeError: rank 1 broke down", summary)
    (then,) = [line for line in summary.splitlines() if line.startswith("launcher: then: ")]
    assert re.fullmatch(r"launcher: then: rank 0 \(local 0 on .*\) killed by SIGKILL", then), summary


def test_the_hang_watchdog_names_the_rank_the_others_wait_for(start_flags, tmp_path, launcher):
    stuck, waiting = 0, 1  # not the first idle rank (the matrix's hang row: rank 1 stuck)
    ran = launcher([*start_flags, "--hang-timeout", 2, "--hang-startup", 60, "--nprocs", 2,
                    "labels.py", "stuck", tmp_path, stuck], timeout=90)
    assert ran.returncode == 124, ran.stderr
    summary = ran.stderr[ran.stderr.index("launcher: job stopped"):]
    assert summary.startswith(f"launcher: job stopped: rank {stuck} (local {stuck}) is holding up the others "
                              f"(rank {waiting} waiting in a collective): the job made no progress for "), summary
    stack = summary.splitlines()[1:4]
    assert stack[0] == f"launcher: rank {stuck}'s main thread (most recent call first):", summary
    assert stack[1].endswith(f"labels.py\", line {_line_of('sum(range(1000))')} in spin"), summary
    assert stack[2].endswith(f"labels.py\", line {_line_of('    spin()')} in <module>"), summary
    # Every rank's stacks are shown above the summary, as the ranks' own lines: the waiting one's in the barrier.
    assert f"[rank{waiting}]:   File \"" in ran.stderr and "distributed_c10d.py\", line" in ran.stderr
    assert f"labels.py\", line {_line_of('dist.barrier()  # the others')} in <module>" in ran.stderr


def test_the_stacks_stay_in_the_log_folder_and_follow_the_console_filter(tmp_path, launcher):
    logs = tmp_path / "logs"
    ran = launcher(["--hang-timeout", 2, "--hang-startup", 60, "--nprocs", 2, "--local-ranks-filter", 0,
                    "--log-dir", logs, "labels.py", "stuck", tmp_path, 1], timeout=90)
    assert ran.returncode == 124, ran.stderr
    assert "[rank0]:   File" in ran.stderr and "[rank1]:   File" not in ran.stderr  # rank 1 is off the console
    assert "launcher: rank 1's main thread" in ran.stderr  # but named, with its stack, in the summary
    (stacks,) = logs.glob("*/attempt_0/1/stacks.txt")
    assert f"line {_line_of('sum(range(1000))')} in spin" in stacks.read_text()


def _line_of(fragment: str) -> int:
    lines = (SAMPLES / "labels.py").read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if fragment in line)


def _start(args: list[object], env: dict[str, str], ignore: tuple[signal.Signals, ...] = ()) -> subprocess.Popen[str]:
    """``python -m launcher ARGS`` with ``ignore`` ignored from the start, as ``nohup`` or ``cmd &`` leave them."""
    prelude = "import os, signal, sys\n" + "".join(f"signal.signal({int(s)}, signal.SIG_IGN)\n" for s in ignore)
    prelude += "os.execv(sys.executable, [sys.executable, '-m', 'launcher', *sys.argv[1:]])\n"
    return subprocess.Popen([sys.executable, "-c", prelude, *map(str, args)], cwd=SAMPLES, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(paths: list[Path], process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not all(path.exists() for path in paths):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the workers never became ready"
        time.sleep(0.02)


FRESH_PYTHON = {"SIGINT": "default_int_handler", "SIGHUP": "SIG_DFL", "SIGTERM": "SIG_DFL", "SIGQUIT": "SIG_DFL",
                "SIGPIPE": "SIG_IGN", "SIGXFSZ": "SIG_IGN", "SIGCHLD": "SIG_DFL", "SIGUSR2": "SIG_DFL"}


@pytest.mark.own_start_methods
@pytest.mark.parametrize("method", ["default", "spawn", "fork"])
def test_workers_start_with_a_fresh_pythons_signals_and_a_sigint_interrupts_them(method, tmp_path, run_env):
    fresh = ("import os, signal, sys\n"  # a python started from a terminal, whatever this test's parent ignores
             "for name in ('SIGINT', 'SIGHUP', 'SIGTERM', 'SIGQUIT', 'SIGCHLD', 'SIGUSR2'):\n"
             "    signal.signal(getattr(signal, name), signal.SIG_DFL)\n"
             "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])\n")
    subprocess.run([sys.executable, "-c", fresh, str(SAMPLES / "signal_state.py"), str(tmp_path)], env=run_env,
                   check=True, timeout=60)
    assert json.loads((tmp_path / "signals0.json").read_text())["handlers"] == FRESH_PYTHON  # what we compare with
    out = tmp_path / "run"
    out.mkdir()
    flags = [] if method == "default" else ["--start-method", method]
    process = _start([*flags, "--nprocs", 2, "signal_state.py", out, "wait"], run_env,
                     ignore=(signal.SIGINT, signal.SIGHUP))
    _wait_for([out / "signals0.json", out / "signals1.json"], process)
    for rank in (0, 1):
        state = json.loads((out / f"signals{rank}.json").read_text())
        assert state["handlers"] == FRESH_PYTHON and state["blocked"] == [], (rank, state)
    os.kill(json.loads((out / "signals1.json").read_text())["pid"], signal.SIGINT)  # a Ctrl-C, to rank 1
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 1, stderr
    assert (out / "interrupted").read_text() == "KeyboardInterrupt"
    first = _summary(stderr).partition("\n")[0]
    assert re.fullmatch(r"launcher: job failed at [\d:.]+: rank 1 \(local 1 on .*\) exit code 1: KeyboardInterrupt",
                        first), stderr  # as a traceback ends: no empty message
    assert tagged_processes(run_env[TAG_VARIABLE]) == []


def test_a_double_dash_before_the_script_ends_the_options(start_flags, tmp_path, launcher):
    script = tmp_path / "argv.py"
    script.write_text("import os, sys\nprint(os.environ['RANK'], sys.argv[1:])\n")
    ran = launcher([*start_flags, "--nproc-per-node", 2, "--", script, "z", "--nprocs", "5"], cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert sorted(line.split(": ", 1)[1] for line in ran.stdout.splitlines()) == [
        "0 ['z', '--nprocs', '5']", "1 ['z', '--nprocs', '5']"]
