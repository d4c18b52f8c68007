"""The pytest plugin ``launcher.testing`` seen from outside: inner pytest runs of sample test modules.

One inner run (module-scoped: it costs a pytest start, a server start and a
2 s timeout) holds one test per case (``tests/samples/plugin/distributed_cases.py``);
the tests below read its report. pytest-xdist, Ctrl-C and SIGKILL get runs of their own.
Every inner run carries a tag: no process of it may outlive it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from launcher.testing.cli import clean_environment
from launcher.testing.processes import kill_tagged, new_tag, wait_until_gone

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.timeout(120)

CASES = Path(__file__).resolve().parent.parent / "samples" / "plugin" / "distributed_cases.py"
PLUGIN = ("-p", "launcher.testing", "-p", "no:cacheprovider")


@dataclass(frozen=True)
class InnerRun:
    returncode: int
    output: str
    left_behind: list[int]

    def section(self, test: str) -> str:
        """The report of one failed test: from its header to the next header."""
        match = re.search(rf"^_+ {re.escape(test)} _+$(.*?)(?=^_{{3,}} |^=+ )", self.output, re.M | re.S)
        assert match, f"no report for {test} in:\n{self.output}"
        return match.group(1)


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> InnerRun:
    folder = tmp_path_factory.mktemp("cases")
    shutil.copy(CASES, folder / "test_cases.py")
    tag = new_tag()
    done = subprocess.run([sys.executable, "-m", "pytest", *PLUGIN, "-rsxX", "test_cases.py"], cwd=folder,
                          env=clean_environment(os.environ, tag), capture_output=True, text=True, timeout=100)
    _, alive = wait_until_gone(tag, timeout=10, poll=0.05)
    kill_tagged(tag)
    return InnerRun(done.returncode, done.stdout + done.stderr, [p.pid for p in alive])


def test_outcomes_of_every_case(cases: InnerRun) -> None:
    summary = cases.output.strip().splitlines()[-1]
    nccl_runs = _gpus() >= 2
    assert f"6 failed, {5 + nccl_runs} passed, {2 - nccl_runs} skipped, 1 xfailed" in summary, cases.output
    assert not cases.left_behind


def test_assertion_failure_names_the_rank_and_shows_pytests_diff(cases: InnerRun) -> None:
    report = cases.section("test_assertion_on_one_rank")
    assert report.lstrip().startswith("rank 1 (of 2) failed: AssertionError: assert {'rank': 1, 'same': 1} == ")
    assert ">       assert values == {\"rank\": 0, \"same\": 1}" in report  # the source line, as pytest shows it
    assert "Differing items:" in report and "{'rank': 1} != {'rank': 0}" in report  # the rewritten explanation
    assert re.search(r"^test_cases.py:\d+: AssertionError$", report, re.M), report
    assert "the other ranks:\n  rank 0: passed" in report
    assert "Captured stdout call" in report and "[rank0]: rank 0 compares\n[rank1]: rank 1 compares" in report


def test_exception_on_every_rank_shows_the_first_and_the_others(cases: InnerRun) -> None:
    report = cases.section("test_exception_on_every_rank")
    first = re.search(r"rank (\d) \(of 2\) failed: ValueError: bad value on rank \1", report)
    assert first, report
    other = 1 - int(first.group(1))
    assert f"rank {other}: failed: ValueError: bad value on rank {other}" in report


def test_segfault_fails_that_test_only(cases: InnerRun) -> None:
    report = cases.section("test_segfault_on_one_rank")
    assert "rank 1 (of 2) was killed by SIGSEGV before it reported" in report
    assert "Fatal Python error: Segmentation fault" in report and "in test_segfault_on_one_rank" in report
    assert re.search(r"rank 0: failed: .*\(raised in torch.distributed", report), report


def test_hang_times_out_with_every_ranks_stacks_and_the_suite_goes_on(cases: InnerRun) -> None:
    report = cases.section("test_hang")
    assert "timed out after 2 s: ranks 0, 1 of 2 still running" in report
    assert re.search(r"\[rank0\]: +File \".*/torch/distributed/distributed_c10d.py\", line \d+ in barrier", report)
    assert re.search(r"\[rank1\]: +File \".*test_cases.py\", line \d+ in test_hang", report)
    assert "launcher/testing/" not in report  # the plugin's own frames are left out
    assert re.search(r"^test_cases.py \.FFF(F)\.", cases.output, re.M), cases.output  # the test after it passed


def test_skip_and_xfail_inside_the_ranks(cases: InnerRun) -> None:
    assert re.search(r"SKIPPED \[1\] test_cases.py:\d+: skipped inside the ranks", cases.output), cases.output
    assert "XFAIL test_cases.py::test_xfail_inside - known to fail" in cases.output


def test_fixture_and_mark_problems_are_one_clear_line(cases: InnerRun) -> None:
    assert cases.section("test_unpicklable_fixture").strip() == (
        "fixture 'lock' cannot be sent to the ranks (TypeError: cannot pickle '_thread.lock' object); "
        "make its value picklable, or create the object inside the test")
    assert cases.section("test_bad_mark").strip() == (
        "@pytest.mark.distributed: nprocs must be a positive integer or 'gpu', got 0")
    if _gpus() < 2:
        assert re.search(r"SKIPPED \[1\] test_cases.py:\d+: backend='nccl' needs 2 CUDA GPUs", cases.output)


def test_xdist_workers_and_importlib_mode(pytester: pytest.Pytester, token: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Two xdist workers, each with its own server; modules imported by the ranks as pytest did (importlib)."""
    monkeypatch.setenv("LAUNCHER_TEST_TAG", token)
    pytester.makeconftest("import pytest\n\n@pytest.fixture\ndef base():\n    return 10\n")
    pytester.makepyfile(test_xdist="""
        import os
        import pytest
        import torch
        import torch.distributed as dist

        class TestSums:
            @pytest.mark.parametrize("n", range(4))
            @pytest.mark.distributed(nprocs=2)
            def test_sum(self, n, base, ctx):
                t = torch.tensor([base + n])
                dist.all_reduce(t)
                assert t.item() == 2 * (base + n)
                assert os.environ["PYTEST_XDIST_WORKER"].startswith("gw")

        @pytest.mark.distributed(nprocs=2)
        def test_diff(ctx):
            assert [ctx.rank, 1] == [0, 1]
    """)
    result = pytester.runpytest_subprocess(*PLUGIN, "-n", "2", "--import-mode=importlib", timeout=100)
    result.assert_outcomes(passed=4, failed=1)
    output = result.stdout.str()
    assert "rank 1 (of 2) failed: AssertionError: assert [1, 1] == [0, 1]" in output
    assert "At index 0 diff: 1 != 0" in output


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "sigkill"])
def test_a_stopped_run_leaves_nothing_behind(pytester: pytest.Pytester, run_env: dict[str, str], token: str,
                                             stop: signal.Signals) -> None:
    """Ctrl-C (pytest stops its server) and SIGKILL (the server sees its stdin close) while ranks run."""
    started = pytester.path / "started"
    pytester.makepyfile(test_wait=f"""
        import pathlib, threading
        import pytest

        @pytest.mark.distributed(nprocs=2, timeout=60)
        def test_waits(ctx):
            pathlib.Path({str(started)!r}, str(ctx.rank)).touch()
            threading.Event().wait()
    """)
    started.mkdir()
    scratch = pytester.path / "tmp"  # the run's TMPDIR: the session's folder goes there
    scratch.mkdir()
    # As from a terminal: a suite started in the background by a shell without job control (`cmd &` in a
    # script, as CI may run it) ignores SIGINT, and so would the inner pytest, which inherits that.
    inner = subprocess.Popen([sys.executable, "-m", "pytest", *PLUGIN, "test_wait.py"], cwd=pytester.path,
                             env={**run_env, "TMPDIR": str(scratch)}, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        _wait_for(lambda: len(os.listdir(started)) == 2, inner)
        assert len(os.listdir(scratch)) == 1  # the session's folder
        inner.send_signal(stop)
        output, _ = inner.communicate(timeout=30)
    finally:
        inner.kill()
    if stop == signal.SIGINT:
        assert inner.returncode == pytest.ExitCode.INTERRUPTED, output
        assert "KeyboardInterrupt" in output
    _, alive = wait_until_gone(token, timeout=10, poll=0.05)  # (the token fixture fails the test on leftovers)
    assert not alive and os.listdir(scratch) == []


def test_importing_the_helpers_imports_neither_pytest_nor_torch() -> None:
    code = ("import sys, launcher.testing, launcher.testing.processes, launcher.testing.cli; "
            "print(sorted({'pytest', 'torch'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def _wait_for(condition: object, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, "the ranks did not start"
        time.sleep(0.05)


def _gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


@pytest.fixture(autouse=True)
def _no_outer_rank_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An outer torchrun's variables must not reach the inner runs (pytester passes os.environ on)."""
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    yield
