"""The fault matrix: every way a job can fail ends with its exit code and its root cause, and leaves nothing.

One row per fault case, one line of data: the launcher's arguments (a sample
script of ``tests/samples`` and flags; ``{out}`` is the row's own folder), the
exit code, the root-cause label of the summary (``label_of``), the start methods
it runs under, a signal to send once every rank is ready, and the row's own extra
check. Every row gets the same checks: the exit code, the label, no process left
(none once the launcher has exited, but multiprocessing's resource tracker, which
ends on its own), nothing left in a private TMPDIR (``launcher-*``, the
forkserver's ``pymp-*``, elastic's ``torchelastic_*``), and no FIFO left in the log
folder when the row keeps one (``--log-dir``).

docs/faults.md documents the same table; tests/unit/test_fault_matrix_doc.py keeps them equal.
Time bounds here are behaviour (the grace period is honoured), not speed goals:
those are measured by benchmarks/failure_latency.py.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

import psutil
import pytest

from launcher.testing.processes import TAG_VARIABLE, alive, tagged_processes, wait_until_gone

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
BOTH = ("default", "spawn")  # no flag (the default start method), and --start-method spawn
ONCE = ("default",)  # start-method independent

pytestmark = [pytest.mark.timeout(120), pytest.mark.own_start_methods]


@dataclass(frozen=True)
class Ended:
    """How one run of a row ended, for the row's own check."""

    returncode: int
    stdout: str
    stderr: str
    finished: float  # time.time() when the launcher had exited
    out: Path


@dataclass(frozen=True)
class Fault:
    case: str
    args: str  # after ``python -m launcher``; {out}: the row's folder; `` | head -1``: one line read, then closed
    code: int
    label: str  # label_of(the summary's first line), a pattern: ? and * as in fnmatch; "none": no summary
    methods: tuple[str, ...] = BOTH
    send: tuple[str, signal.Signals] | None = None  # once all ranks are ready, to: launcher, launcher's group, rank 1
    check: Callable[[Ended], None] | None = None


# -- the rows' own checks (what the label alone does not show) --------------------------------------------------


def _traceback_in(function: str) -> Callable[[Ended], None]:
    def check(ended: Ended) -> None:
        assert f"in {function}" in _summary(ended.stderr), ended.stderr  # the user's frame, as raised

    return check


def _traceback_and_the_other_rank_after_it(ended: Ended) -> None:
    _traceback_in("fail_in_rank_one")(ended)
    # Rank 0, in its barrier: stopped by the launcher, or (a busy host) out of the barrier on its own.
    assert "launcher: then: rank 0 (local 0 on " in ended.stderr, ended.stderr


def _crash_dump_shown(ended: Ended) -> None:
    assert "Segmentation fault" in _summary(ended.stderr), ended.stderr  # faulthandler's dump, as the rank's output


def _exit_code_and_log_folder(ended: Ended) -> None:
    (run,) = (ended.out / "logs").iterdir()
    end = ended.stderr.splitlines()[-1]  # the end of the run: how many ranks, how long, the exit code, the logs
    assert re.fullmatch(rf"launcher: 2 ranks failed after [\d.]+ s, exit code 3; logs in {re.escape(str(run))}",
                        end), end
    assert (ended.out / "atexit1").read_text() == "ran"  # sys.exit runs atexit, as under python


def _message_once_without_traceback(ended: Ended) -> None:
    summary = _summary(ended.stderr)
    assert summary.count("rank 1 found no data in /nowhere") == 1, summary  # not again as "last output"
    assert "[rank1]: rank 1 found no data in /nowhere" in ended.stderr  # printed by the rank, as Python does
    assert "[rank1]: Traceback" not in ended.stderr  # a sys.exit: no traceback, as under python


def _each_failed_on_its_own(ended: Ended) -> None:
    summary = _summary(ended.stderr)
    assert "stopped by the launcher" not in summary, summary
    for rank in (0, 1):
        assert f"exit code 1: RuntimeError: rank {rank} broke down" in summary, summary


def _killed_after_the_grace_period(ended: Ended) -> None:
    assert "then: rank 0 (local 0 on " in ended.stderr and "stopped by the launcher (SIGKILL)" in ended.stderr
    # From rank 1's raise (the summary's clock time) to the launcher's exit: the grace period of 1 s, and not
    # a fixed 30 s as torchrun waits here. Counted from the raise, so that a slow start on a busy host is not.
    clock = re.match(r"launcher: job failed at ([\d:.]+): ", _summary(ended.stderr))
    assert clock is not None, ended.stderr
    waited = _seconds_since(clock[1], ended.finished)
    assert waited < 10, waited


def _seconds_since(clock: str, now: float) -> float:
    """Seconds from a summary's clock time (``HH:MM:SS.mmm``, local) to ``now`` (``time.time()``)."""
    hours, minutes, seconds = clock.split(":")
    local = time.localtime(now)
    of_day = local.tm_hour * 3600 + local.tm_min * 60 + local.tm_sec + now % 1
    return (of_day - (int(hours) * 3600 + int(minutes) * 60 + float(seconds))) % 86400


def _children_stopped(ended: Ended) -> None:
    for rank in (0, 1):  # children that ignore SIGTERM, in each rank's process group
        assert not alive_pid(int((ended.out / f"child{rank}").read_text()))


def _holder_named_with_its_stack(ended: Ended) -> None:
    summary = ended.stderr[ended.stderr.index("launcher: job stopped"):]
    assert summary.splitlines()[1] == "launcher: rank 1's main thread (most recent call first):", summary
    assert "in spin" in summary.splitlines()[2], summary


def _cleaned_up_in_the_grace_period(ended: Ended) -> None:
    # A terminal's Ctrl-C signals the launcher's whole group: the workers get one SIGTERM, and their
    # handlers finish (a second signal would skip the grace period).
    assert sorted(p.name for p in ended.out.glob("cleaned*")) == ["cleaned0", "cleaned1"], ended.stderr


def _succeeded_after_one_restart(ended: Ended) -> None:
    restarts = [line for line in ended.stderr.splitlines() if "restarting the workers" in line]
    (run,) = (ended.out / "logs").iterdir()
    # Rank 1 alone failed: rank 0 was stopped by the launcher, or (a busy host) left its barrier as rank 1 went away.
    assert len(restarts) == 1 and restarts[0].startswith("launcher: rank 1 failed (exit code 1), rank 0 "), restarts
    assert restarts[0].endswith(f"; restarting the workers: restart 1 of 1, logs in {run / 'attempt_1'}"), restarts
    assert ended.stdout.count("attempt 1 done, sum 1") == 2, ended.stdout
    end = ended.stderr.splitlines()[-1]  # the success says that it came after a restart, and where each attempt is
    assert re.fullmatch(rf"launcher: 2 ranks finished in [\d.]+ s after 1 restart; logs in {re.escape(str(run))} "
                        r"\(attempt_0 to attempt_1\)", end), end


def _last_attempts_error(ended: Ended) -> None:
    assert ended.stderr.count("restarting the workers") == 1, ended.stderr
    assert "connectFullMesh" not in ended.stderr  # the restarted attempt formed its group on a fresh store


def _daemons_stopped(ended: Ended) -> None:
    # Rank 1 fails once its own daemon started; rank 0 may be stopped before it started its own.
    started = [ended.out / f"daemon{rank}" for rank in (0, 1) if (ended.out / f"daemon{rank}").exists()]
    assert ended.out / "daemon1" in started
    daemons = [int(path.read_text()) for path in started]
    assert [pid for pid in daemons if alive_pid(pid)] == []  # stopped before the launcher returned
    assert "BrokenPipeError" not in ended.stderr and "unexpected pid" not in ended.stderr, ended.stderr
    assert ended.stderr.count("Traceback") == 2, ended.stderr  # the rank's own, as it printed it and in the summary


def _one_line_nothing_run(ended: Ended) -> None:
    assert len(ended.stderr.splitlines()) == 1 and ended.stdout == "", ended.stderr


# -- the table ------------------------------------------------------------------------------------------------

SIGINT, SIGTERM, SIGHUP, SIGKILL = signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL
HANG = "--hang-timeout 2 --hang-startup 60"

FAULTS = (
    Fault("rank raises", "--nprocs 2 faults.py raise {out}", 1,
          "rank 1: exit code 1: RuntimeError: rank one broke down", check=_traceback_and_the_other_rank_after_it),
    Fault("rank segfaults", "--nprocs 2 faults.py segfault {out}", 139, "rank 1: killed by SIGSEGV",
          check=_crash_dump_shown),
    Fault("rank calls sys.exit(3)", "--nprocs 2 --log-dir {out}/logs exits.py exit3 {out}", 3, "rank 1: exit code 3",
          check=_exit_code_and_log_folder),
    Fault("rank calls sys.exit(message)", "--nprocs 2 labels.py exit_message {out}", 1,
          "rank 1: exit code 1: rank 1 found no data in /nowhere", check=_message_once_without_traceback),
    Fault("rank killed by SIGKILL from outside", "--nprocs 2 faults.py wait {out}", 137, "rank 1: killed by SIGKILL",
          send=("rank 1", SIGKILL)),
    Fault("rank aborts (os.abort)", "--nprocs 2 faults.py abort {out}", 134, "rank 1: killed by SIGABRT"),
    Fault("function entrypoint raises", "--nprocs 2 funcs_fail.py:explode_on_one", 1,
          "rank 1: exit code 1: KeyError: 'missing shard on rank one'", check=_traceback_in("explode_on_one")),
    Fault("two ranks raise at once", "--nprocs 2 labels.py both_raise {out}", 1,
          "rank ?: exit code 1: RuntimeError: rank ? broke down", check=_each_failed_on_its_own),
    Fault("a rank ignores SIGTERM", "--shutdown-timeout 1 --nprocs 2 faults.py ignore_sigterm {out}", 1,
          "rank 1: exit code 1: RuntimeError: rank one broke down", check=_killed_after_the_grace_period),
    Fault("ranks' children ignore SIGTERM", "--nprocs 2 faults.py orphan_child {out}", 1,
          "rank 1: exit code 1: RuntimeError: rank one broke down", check=_children_stopped),
    Fault("rank hangs", f"{HANG} --nprocs 2 labels.py stuck {{out}} 1", 124,
          "rank 1: is holding up the others (rank 0 waiting in a collective)", check=_holder_named_with_its_stack),
    Fault("Ctrl-C (SIGINT to the launcher's group)", "--nprocs 2 faults.py clean_up_on_sigterm {out}", 130,
          "stopped by SIGINT; every worker was stopped", send=("launcher's group", SIGINT),
          check=_cleaned_up_in_the_grace_period),
    Fault("launcher gets SIGTERM", "--nprocs 2 --log-dir {out}/logs faults.py wait {out}", 143,
          "stopped by SIGTERM; every worker was stopped", send=("launcher", SIGTERM)),
    Fault("launcher gets SIGHUP", "--nprocs 2 faults.py wait {out}", 129,
          "stopped by SIGHUP; every worker was stopped", send=("launcher", SIGHUP)),
    Fault("fails once, --max-restarts 1", "--nprocs 2 --max-restarts 1 --log-dir {out}/logs restart_once.py", 0,
          "none", check=_succeeded_after_one_restart),
    Fault("fails always, --max-restarts 1", "--nprocs 2 --max-restarts 1 restart_once.py --fail-attempts -1", 1,
          "rank 1: exit code 1: InjectedFailure: rank 1 fails in attempt 1", check=_last_attempts_error),
    Fault("rank starts a daemon, then raises", "--nprocs 2 daemon.py {out} fail", 1,
          "rank 1: exit code 1: RuntimeError: rank one fails after starting its daemon", check=_daemons_stopped),
    Fault("bad input (a typo in the job file)", "bad_job.yaml", 2,
          "error: bad_job.yaml:3: world.nprocz: unknown key (did you mean 'nprocs'?)", ONCE,
          check=_one_line_nothing_run),
    Fault("more local processes than the host holds", "--nprocs 10000000 faults.py raise {out}", 2,
          "error: world.nprocs: 10000000 local processes *", ONCE, check=_one_line_nothing_run),
    Fault("the output's reader goes away", "--nprocs 2 --log-dir {out}/logs printer.py | head -1", 141,
          "stdout was closed by its reader (a pipe like `| head`): stopped the job"),
)


# -- reading the summary --------------------------------------------------------------------------------------

SUMMARY_STARTS = ("launcher: job failed", "launcher: job stopped: ", "launcher: stopped by ", "launcher: error: ",
                  "launcher: stdout was closed ", "launcher: stderr was closed ")
_RANK_LINE = re.compile(r"launcher: job (?:failed at [\d:.]+|stopped): rank (\d+) \(local \d+[^)]*\) (.*?)")


def _summary(stderr: str) -> str:
    """From the summary's first line to the end."""
    starts = [stderr.find(start) for start in SUMMARY_STARTS if start in stderr]
    return stderr[min(starts):] if starts else ""


def label_of(stderr: str) -> str:
    """The root cause as the summary's first line gives it: ``rank 1: killed by SIGSEGV`` (rank, host and
    time left out), ``stopped by SIGTERM; ...``, ``error: ...``; ``none`` without a summary."""
    line = _summary(stderr).partition("\n")[0]
    if not line:
        return "none"
    ranked = _RANK_LINE.fullmatch(line)
    return f"rank {ranked[1]}: {ranked[2]}" if ranked else line.removeprefix("launcher: ")


def alive_pid(pid: int) -> bool:
    try:
        return alive(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return False


def _assert_no_process_left(tag: str) -> None:
    """Nothing of the job runs once the launcher has exited, but multiprocessing's resource tracker (started
    by the launcher under spawn): it sees its parent gone, removes what the job left in /dev/shm, and ends."""
    left = [(p.pid, _command(p)) for p in tagged_processes(tag)]
    assert [(pid, command) for pid, command in left if command and "resource_tracker" not in command] == [], left
    _, still = wait_until_gone(tag, timeout=10, poll=0.02)
    assert still == [], [(p.pid, _command(p)) for p in still]


def _command(process: psutil.Process) -> str:
    """Its command line; empty once it ended (a zombie, or reaped)."""
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


# -- running a row --------------------------------------------------------------------------------------------


@pytest.fixture
def scratch() -> Iterator[Path]:
    """The launcher's TMPDIR: private, and short (under a long one the server's socket folder goes to /tmp)."""
    folder = Path(tempfile.mkdtemp(prefix="matrix-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _rows() -> list[object]:
    return [pytest.param(row, method, id=f"{re.sub(r'[^a-z0-9]+', '-', row.case.lower()).strip('-')}-{method}")
            for row in FAULTS for method in row.methods]


def _run(row: Fault, method: str, out: Path, env: dict[str, str], logs: Path) -> Ended:
    command, _, reader = row.args.partition(" | ")
    args = shlex.split(command.format(out=out))
    if method != "default":
        args = ["--start-method", method, *args]
    with open(logs / "stdout.txt", "wb") as stdout, open(logs / "stderr.txt", "wb") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "launcher", *args], cwd=SAMPLES, env=env,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE if reader else stdout,
                                   stderr=stderr, start_new_session=True)
    try:
        if reader:  # ``head -1``: one line, then its end of the pipe is closed
            assert reader == "head -1" and process.stdout is not None
            (logs / "stdout.txt").write_bytes(process.stdout.readline())
            process.stdout.close()
        if row.send is not None:
            _send(row.send, process, out, nprocs=int(args[args.index("--nprocs") + 1]))
        process.wait(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    finished = time.time()
    return Ended(process.returncode, (logs / "stdout.txt").read_text(), (logs / "stderr.txt").read_text(),
                 finished, out)


def _send(send: tuple[str, signal.Signals], process: subprocess.Popen[bytes], out: Path, nprocs: int) -> None:
    """Once every rank wrote its ready file (a condition, not a delay), send the signal."""
    ready = [out / f"ready{rank}" for rank in range(nprocs)]
    deadline = time.monotonic() + 60
    while not all(path.exists() for path in ready):
        assert process.poll() is None, f"the launcher ended (code {process.returncode}) before the ranks were ready"
        assert time.monotonic() < deadline, "the ranks never became ready"
        time.sleep(0.01)
    target, sig = send
    if target == "launcher":
        process.send_signal(sig)
    elif target == "launcher's group":
        os.killpg(process.pid, sig)
    else:
        os.kill(int((out / f"ready{target.removeprefix('rank ')}").read_text()), sig)


@pytest.mark.parametrize(("row", "method"), _rows())
def test_fault(row: Fault, method: str, tmp_path: Path, scratch: Path, run_env: dict[str, str]) -> None:
    out, logs = tmp_path / "out", tmp_path / "launcher"
    out.mkdir(), logs.mkdir()
    ended = _run(row, method, out, {**run_env, "TMPDIR": str(scratch)}, logs)
    assert ended.returncode == row.code, ended.stderr
    assert fnmatchcase(label_of(ended.stderr), f"{row.label}*"), ended.stderr
    if row.check is not None:
        row.check(ended)
    _assert_no_process_left(run_env[TAG_VARIABLE])
    assert sorted(p.name for p in scratch.iterdir()) == []  # removed once the last process was gone
    assert [path for path in out.rglob("*") if path.is_fifo()] == []
