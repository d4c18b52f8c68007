"""The checks that read the target's source, on the sample corpus (tests/samples/spawn).

A sample marks each line where a check must report with a trailing ``# <- CHECK``;
the expected status per platform is in the tables below.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from launcher.hints import FIX_CUDA_FORK, FIX_GUARD_DEF, FIX_MAIN_GUARD, FIX_PICKLE
from launcher.platforms import default_mp_start_method
from launcher.preflight.findings import Finding
from launcher.preflight.source import check_cuda_fork, check_lambdas, check_main_guard
from launcher.preflight.target import check_target

pytestmark = pytest.mark.timeout(60)

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "spawn"
# Where Python's own default forks (Linux before 3.14), "fork-only" code passes with a warning;
# elsewhere it fails. Rows marked PORTABLE expect exactly that.
PORTABLE = "warn" if default_mp_start_method("linux") == "fork" else "fail"
CHECK_FUNCS = {"main-guard": check_main_guard, "pickle": check_lambdas, "cuda-fork": check_cuda_fork}
CHOSEN = {"linux": "forkserver", "darwin": "spawn", "win32": "spawn"}


def marked_lines(sample: str, check: str) -> set[int]:
    text = (SAMPLES / sample).read_text().splitlines()
    return {i for i, line in enumerate(text, 1) if line.rstrip().endswith(f"# <- {check}")}


def problems(findings: list[Finding]) -> set[tuple[str, int]]:
    return {(f.status, int(f.where.rsplit(":", 1)[1])) for f in findings if f.status != "pass"}


CASES = [
    # sample, platform, check, expected status of every marked line ("pass": nothing reported)
    ("guarded_spawn.py", "linux", "main-guard", "pass"),
    ("guarded_spawn.py", "win32", "main-guard", "pass"),
    ("guarded_spawn.py", "darwin", "pickle", "pass"),
    ("unguarded_spawn.py", "linux", "main-guard", "fail"),  # torch's spawn always spawns
    ("unguarded_spawn.py", "win32", "main-guard", "fail"),
    ("unguarded_pool.py", "linux", "main-guard", PORTABLE),
    ("unguarded_pool.py", "darwin", "main-guard", "fail"),
    ("unguarded_pool.py", "win32", "main-guard", "fail"),
    ("set_spawn_pool.py", "linux", "main-guard", "fail"),  # set_start_method("spawn") in the file
    ("main_call_unguarded.py", "linux", "main-guard", "fail"),  # one level through main()
    ("aliases.py", "linux", "main-guard", "fail"),  # from torch.multiprocessing import spawn as x; if True:
    ("dataloader_toplevel_iter.py", "linux", "main-guard", PORTABLE),
    ("dataloader_toplevel_iter.py", "darwin", "main-guard", "fail"),
    ("dataloader_nonliteral.py", "darwin", "main-guard", "warn"),  # num_workers unknown: maybe
    ("launcher_launch_unguarded.py", "linux", "main-guard", "fail"),  # chosen forkserver re-imports
    ("three_mistakes.py", "linux", "main-guard", "fail"),
    ("lambda_collate_fork.py", "linux", "main-guard", "pass"),
    ("lambda_collate_fork.py", "linux", "pickle", PORTABLE),  # runs under torchrun on Linux: only a warning
    ("lambda_collate_fork.py", "darwin", "pickle", "fail"),
    ("lambda_collate_spawn.py", "linux", "pickle", "fail"),  # multiprocessing_context="spawn"
    ("lambda_transform.py", "linux", "pickle", PORTABLE),
    ("lambda_transform.py", "win32", "pickle", "fail"),
    ("lambda_transform_noworkers.py", "darwin", "pickle", "pass"),  # no workers: nothing pickled
    ("dataset_attr_lambda.py", "linux", "pickle", "fail"),  # context from a module-level get_context
    ("local_target.py", "linux", "pickle", "fail"),
    ("process_lambda_target.py", "linux", "pickle", PORTABLE),
    ("process_lambda_target.py", "darwin", "pickle", "fail"),
    ("pool_map_lambda.py", "linux", "pickle", "fail"),  # pool tasks are pickled under fork too
    ("guard_defined_fn.py", "linux", "pickle", "fail"),
    ("three_mistakes.py", "linux", "pickle", "fail"),
    ("cuda_before_fork.py", "linux", "cuda-fork", "fail"),
    ("cuda_then_spawn.py", "linux", "cuda-fork", "pass"),
    ("guarded_spawn.py", "linux", "cuda-fork", "pass"),
]


@pytest.mark.parametrize(("sample", "platform", "check", "expected"), CASES)
def test_sample_reports_expected_status_at_marked_lines(
    sample: str, platform: str, check: str, expected: str
) -> None:
    findings = CHECK_FUNCS[check](SAMPLES / sample, CHOSEN[platform], platform)
    assert all(f.check == check for f in findings)
    if expected == "pass":
        assert [f.status for f in findings] == ["pass"], findings
        return
    lines = marked_lines(sample, check)
    assert lines, f"{sample} has no '# <- {check}' marker"
    assert problems(findings) == {(expected, line) for line in lines}, findings
    assert all(f.where.startswith("tests/samples/spawn/" + sample) for f in findings if f.status != "pass")


@pytest.mark.parametrize(
    ("sample", "fragment", "fix"),
    [
        ("local_target.py", "local function main.<locals>.work at local_target.py:5", FIX_PICKLE),
        ("lambda_collate_spawn.py", "lambda at lambda_collate_spawn.py:9 (collate_fn)", FIX_PICKLE),
        ("dataset_attr_lambda.py", "attribute Squares.fn of a Dataset", FIX_PICKLE),
        (
            "guard_defined_fn.py",
            "function collate defined under the __main__ guard at guard_defined_fn.py:5",
            FIX_GUARD_DEF,
        ),
        ("pool_map_lambda.py", "a process pool pickles every task", FIX_PICKLE),
    ],
)
def test_pickle_finding_names_the_object_and_the_fix(sample: str, fragment: str, fix: str) -> None:
    (finding,) = [f for f in check_lambdas(SAMPLES / sample, "spawn", "linux") if f.status != "pass"]
    assert fragment in finding.message
    assert finding.fix == fix


def test_main_guard_through_a_call_names_the_function_and_the_inner_line() -> None:
    (finding,) = check_main_guard(SAMPLES / "main_call_unguarded.py", "forkserver", "linux")
    assert "main() runs at import" in finding.message and "(line 9)" in finding.message
    assert finding.fix == FIX_MAIN_GUARD


def test_launcher_launch_follows_the_chosen_start_method() -> None:
    path = SAMPLES / "launcher_launch_unguarded.py"
    assert check_main_guard(path, "fork", "linux")[0].status == "warn"
    assert check_main_guard(path, "spawn", "linux")[0].status == "fail"


def test_cuda_before_fork_names_the_cuda_line() -> None:
    (finding,) = check_cuda_fork(SAMPLES / "cuda_before_fork.py", "forkserver", "linux")
    assert "line 11 (torch.cuda.set_device)" in finding.message and finding.fix == FIX_CUDA_FORK


# -- target ----------------------------------------------------------------------------------------
def test_missing_script_fails() -> None:
    finding, source = check_target(Path("nope.py"), None, None, SAMPLES)
    assert (finding.status, source) == ("fail", None) and "nope.py: no such file" in finding.message


def test_a_directory_runs_its_main_or_is_named_a_directory(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    finding, source = check_target(Path("app"), None, None, tmp_path)
    assert (finding.status, source) == ("fail", None)
    assert "app: is a directory, with no __main__.py to run" in finding.message and "app/train.py" in finding.fix
    (tmp_path / "app" / "__main__.py").write_text("print('hello')\n")
    finding, source = check_target(Path("app"), None, None, tmp_path)
    assert finding.status == "pass" and source is not None and source.name == "__main__.py"


def test_syntax_error_fails_at_its_line() -> None:
    finding, source = check_target(Path("syntax_error.py"), None, None, SAMPLES)
    assert finding.status == "fail" and finding.where.endswith("syntax_error.py:5") and source is None


def test_script_function_found_and_missing() -> None:
    ok, source = check_target(Path("local_target.py"), None, "main", SAMPLES)
    assert ok.status == "pass" and source == SAMPLES / "local_target.py"
    bad, _ = check_target(Path("local_target.py"), None, "mian", SAMPLES)
    assert bad.status == "fail" and "did you mean 'main'" in bad.fix


def test_module_target_is_found_without_running_package_init() -> None:
    # pkg_heavy/__init__.py raises when executed: finding the submodule must not run it.
    finding, source = check_target(None, "pkg_heavy.train", "main", SAMPLES)
    assert finding.status == "pass", finding
    assert source == SAMPLES / "pkg_heavy" / "train.py"
    assert "pkg_heavy" not in sys.modules


@pytest.mark.parametrize(
    ("module", "function", "fragment"),
    [
        ("pkg_heavy.nope", None, "no module named 'pkg_heavy.nope'"),
        ("no_such_top_level_pkg_x", None, "no module named 'no_such_top_level_pkg_x'"),
        ("pkg_heavy", None, "package with no __main__.py"),
        ("pkg_heavy.train", "only_when_run", "only under the __main__ guard"),
        ("pkg_heavy.train", "mian", "not defined at module top level"),
        ("pkg-heavy", None, "is not a module name"),
    ],
)
def test_bad_module_targets_fail_with_a_reason(module: str, function: str | None, fragment: str) -> None:
    finding, _ = check_target(None, module, function, SAMPLES)
    assert finding.status == "fail" and fragment in finding.message
    assert "pkg_heavy" not in sys.modules


def test_stdlib_module_target_passes() -> None:
    finding, source = check_target(None, "timeit", None, SAMPLES)
    assert finding.status == "pass" and source is not None and source.name == "timeit.py"
