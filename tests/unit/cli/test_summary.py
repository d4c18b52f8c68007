"""The failure summary: the time apart from the error, no repeat of what one rank already showed, the usage hint."""

from __future__ import annotations

import io
import re

import pytest

from launcher.cli.summary import report
from launcher.result import RankFailure, RunResult

pytestmark = pytest.mark.timeout(30)

TRACEBACK = ('Traceback (most recent call last):\n  File "train.py", line 4, in load\n'
             "ValueError: corrupt sample at step 3\n")
OUTPUT = ("step 1", *TRACEBACK.splitlines())


def _failed(rank: int = 0, exitcode: int = 1, message: str | None = "ValueError: corrupt sample at step 3",
            traceback: str | None = TRACEBACK, lines: tuple[str, ...] = OUTPUT) -> RankFailure:
    return RankFailure(rank=rank, local_rank=rank, host="h", pid=7, exitcode=exitcode, signal=None, timestamp=1.5,
                       message=message, traceback=traceback, last_lines=lines)


def _report(result: RunResult, shown_as_is: bool) -> list[str]:
    out = io.StringIO()
    report(result, out, lambda local_rank: shown_as_is)
    return out.getvalue().splitlines()


def test_the_time_of_the_failure_is_apart_from_its_message() -> None:
    first = _report(RunResult(failures=(_failed(),), world_size=2, nodes=1), shown_as_is=False)[0]
    assert re.fullmatch(r"launcher: job failed at \d\d:\d\d:\d\d\.500: rank 0 \(local 0 on h, pid 7\) exit code 1: "
                        r"ValueError: corrupt sample at step 3", first), first


def test_one_rank_on_the_console_is_not_repeated() -> None:
    result = RunResult(failures=(_failed(),), wall_time=1.0, world_size=1, nodes=1)
    lines = _report(result, shown_as_is=True)
    assert lines[0].endswith("exit code 1: ValueError: corrupt sample at step 3; its output is above"), lines
    assert lines[1:] == ["launcher: 1 rank failed after 1.0 s, exit code 1"]


def test_several_ranks_repeat_the_root_causes_traceback_and_output() -> None:
    result = RunResult(failures=(_failed(),), wall_time=1.0, world_size=2, nodes=1)
    lines = _report(result, shown_as_is=False)
    assert lines[1:] == ["launcher: root cause traceback of rank 0:", *TRACEBACK.splitlines(),
                         "launcher: last output of rank 0:", "[rank0]: step 1",
                         "launcher: 2 ranks failed after 1.0 s, exit code 1"]


def test_a_scripts_usage_error_gets_the_hint_even_when_shown_above() -> None:
    output = ("usage: train.py [-h] [--epochs EPOCHS]", "train.py: error: unrecognized arguments: --nprocs 4")
    result = RunResult(failures=(_failed(exitcode=2, message=None, traceback=None, lines=output),), world_size=1)
    lines = _report(result, shown_as_is=True)
    assert lines[1] == ("launcher: fix: --nprocs is a launcher flag, but came after the target and so went to the "
                        "script: put it before the target"), lines


def test_no_message_nests_parentheses() -> None:
    stopped = RankFailure(rank=1, local_rank=1, host="h", pid=8, exitcode=None, signal="SIGTERM", timestamp=2.0,
                          message=None, traceback=None, stopped_by_launcher=True)
    result = RunResult(failures=(_failed(), stopped), restarts=1, log_dir="runs/r", world_size=2, nodes=1)
    for line in _report(result, shown_as_is=False):
        assert not re.search(r"\([^)]*\(", line), line


def test_a_crash_dump_is_shown_without_the_launchers_own_threads() -> None:
    dump = (
        "Fatal Python error: Segmentation fault",
        "",
        "Thread 0x00007fae9c7ff6c0 (most recent call first):",
        '  File "/usr/lib/python3.11/threading.py", line 331 in wait',
        '  File "/site/launcher/runtime/threads.py", line 46 in _run',
        '  File "/usr/lib/python3.11/threading.py", line 1002 in _bootstrap',
        "",
        "Thread 0x00007fae9d000000 (most recent call first):",
        '  File "/work/loader_thread.py", line 9 in fetch',
        "",
        "Current thread 0x00007faebb027b80 (most recent call first):",
        '  File "/usr/lib/python3.11/ctypes/__init__.py", line 519 in string_at',
        '  File "/work/train.py", line 71 in <module>',
        '  File "/site/launcher/bootstrap.py", line 242 in run_script_as_main',
        "",
        "Extension modules: torch._C (total: 1)",
    )
    crashed = RankFailure(rank=1, local_rank=1, host="h", pid=7, exitcode=None, signal="SIGSEGV", timestamp=1.5,
                          message=None, traceback=None, last_lines=dump)
    lines = _report(RunResult(failures=(crashed,), world_size=2, nodes=1), shown_as_is=False)
    shown = lines[lines.index("launcher: last output of rank 1:") + 1:-1]
    assert shown == ["[rank1]: Fatal Python error: Segmentation fault",
                     "[rank1]: Thread 0x00007fae9d000000 (most recent call first):",
                     '[rank1]:   File "/work/loader_thread.py", line 9 in fetch',
                     "[rank1]: Current thread 0x00007faebb027b80 (most recent call first):",
                     '[rank1]:   File "/usr/lib/python3.11/ctypes/__init__.py", line 519 in string_at',
                     '[rank1]:   File "/work/train.py", line 71 in <module>']
