"""Static preflight on the sample corpus (tests/samples/spawn) and on faked host facts.

A sample marks each line where a check must report with a trailing ``# <- CHECK``;
the expected status per platform is in the tables below.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from launcher import preflight, sourcechecks
from launcher.errors import PreflightError, UsageError
from launcher.platforms import default_mp_start_method
from launcher.preflight import (
    Finding,
    StaticInputs,
    check_cuda_fork,
    check_gpus,
    check_lambdas,
    check_main_guard,
    check_paths,
    check_port,
    check_target,
    check_threads,
    known_error_hints,
    render_table,
    run_static_checks,
)
from launcher.runtime.spawncheck import FIX_CUDA_FORK, FIX_GUARD_DEF, FIX_MAIN_GUARD, FIX_PICKLE, FIX_PORT

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "tests" / "samples" / "spawn"
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


# -- host facts ------------------------------------------------------------------------------------
def test_port_in_use_fails_and_free_port_passes() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = check_port("127.0.0.1", port)
    assert (taken.status, taken.fix) == ("fail", FIX_PORT) and str(port) in taken.message
    assert check_port("127.0.0.1", port).status == "pass"  # closed again


@pytest.mark.parametrize(
    ("host", "port", "status"),
    [("127.0.0.1", None, "pass"), ("127.0.0.1", 70000, "fail"), ("192.0.2.1", 29500, "pass")],
)
def test_port_edge_cases(host: str, port: int | None, status: str) -> None:
    # 192.0.2.1 (TEST-NET) is not this machine: nothing to test here, and nothing is contacted.
    assert check_port(host, port).status == status


def test_relative_path_that_exists_only_in_launch_dir_fails(tmp_path: Path) -> None:
    launch, job = tmp_path / "launch", tmp_path / "job"
    (launch / "data").mkdir(parents=True)
    job.mkdir()
    (finding,) = check_paths({"data.root": "data"}, launch, job)
    assert finding.status == "fail" and str(launch / "data") in finding.fix
    (same,) = check_paths({"data.root": "data"}, launch, None)
    assert same.status == "pass"


def test_missing_input_warns_and_writable_output_passes(tmp_path: Path) -> None:
    findings = check_paths(
        {"data.root": "missing", "logs.dir": "runs/new"}, tmp_path, None, writable={"logs.dir"}
    )
    assert [(f.status, f.message.split(":")[0]) for f in findings] == [("warn", "data.root")]


@pytest.mark.parametrize("inside", ["", "logs"])
def test_output_folder_that_is_or_lies_in_a_file_fails(inside: str, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    findings = check_paths({"logs.dir": str(tmp_path / "afile" / inside)}, tmp_path, None, writable={"logs.dir"})
    expected = ("fail", f"logs.dir: {tmp_path / 'afile'} is a file, not a folder")
    assert [(f.status, f.message) for f in findings] == [expected]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_and_unreadable_input_fail(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    secret = tmp_path / "secret"
    secret.write_text("x")
    locked.chmod(0o500)
    secret.chmod(0o000)
    try:
        findings = check_paths(
            {"ckpt": str(locked / "c"), "data": str(secret)}, tmp_path, None, writable={"ckpt"}
        )
    finally:
        locked.chmod(0o700)
        secret.chmod(0o600)
    assert [f.status for f in findings] == ["fail", "fail"]


@pytest.mark.parametrize(
    ("backend", "nprocs", "gpus", "cvd", "status", "fragment"),
    [
        ("nccl", 4, 2, None, "fail", "4 nccl processes but 2 visible"),
        ("nccl", 1, 0, None, "fail", "none is visible"),
        ("nccl", 2, 4, "0,1", "pass", ""),
        ("nccl", 4, 4, "0,1", "fail", "4 nccl processes but 2 visible"),
        ("nccl", 2, 4, "0,0", "fail", "names a GPU twice"),
        ("nccl", 1, 2, "0,5", "warn", "GPU 5 does not exist here"),  # CUDA uses GPU 0: works
        ("nccl", 2, 2, "0,5", "fail", "2 nccl processes but 1 visible"),
        ("nccl", 2, 0, "GPU-1a2b,GPU-3c4d", "pass", ""),
        ("nccl", 1, 4, "", "fail", "none is visible"),
        ("nccl", 1, 4, "-1", "fail", "none is visible"),
        ("gloo", 4, 0, None, "pass", ""),
        ("gloo", 4, 4, "0,1", "warn", "gives 2 GPU(s) to 4 processes"),
    ],
)
def test_gpus(backend: str, nprocs: int, gpus: int, cvd: str | None, status: str, fragment: str) -> None:
    finding = check_gpus(backend, nprocs, gpus, cvd)
    assert finding.status == status and fragment in finding.message


@pytest.mark.parametrize(
    ("omp", "procs", "cpus", "status", "fix"),
    [
        (None, 8, 2, "pass", ""),
        ("1", 2, 2, "pass", ""),
        ("4", 4, 8, "warn", "OMP_NUM_THREADS=2"),
        ("4,2", 4, 4, "warn", "OMP_NUM_THREADS=1"),
        ("four", 1, 4, "warn", "a number"),
    ],
)
def test_threads_warn_only_for_user_values(
    omp: str | None, procs: int, cpus: int, status: str, fix: str
) -> None:
    finding = check_threads(omp, procs, cpus)
    assert finding.status == status and fix in finding.fix


# -- error texts that slipped through --------------------------------------------------------------
BOOTSTRAP = """RuntimeError:
        An attempt has been made to start a new process before the
        current process has finished its bootstrapping phase.
"""


@pytest.mark.parametrize(
    ("text", "fix"),
    [
        (BOOTSTRAP, FIX_MAIN_GUARD),
        ("RuntimeError: Cannot re-initialize CUDA in forked subprocess. To use CUDA with", FIX_CUDA_FORK),
        ("_pickle.PicklingError: Can't pickle <function <lambda> at 0x7f>: attribute lookup", FIX_PICKLE),
        ("AttributeError: Can't pickle local object 'main.<locals>.work'", FIX_PICKLE),
        ("AttributeError: Can't get local object 'main.<locals>.work'", FIX_PICKLE),
        ("AttributeError: Can't get attribute 'collate' on <module '__main__' (built-in)>", FIX_GUARD_DEF),
        (
            "AttributeError: Can't get attribute 'collate' on <module '__mp_main__' from 'x.py'>",
            FIX_GUARD_DEF,
        ),
        (
            "The server socket has failed to listen on [::]:29500 (errno: 98 - Address already in use)",
            FIX_PORT,
        ),
        ("OSError: [Errno 98] Address already in use", FIX_PORT),
        ("ValueError: loss is nan", None),
    ],
)
def test_known_error_hints(text: str, fix: str | None) -> None:
    assert known_error_hints(text) == fix


# -- runner, table, skip ---------------------------------------------------------------------------
def three_mistakes_inputs(**changes: object) -> StaticInputs:
    base = StaticInputs(
        platform="linux", start_method="forkserver", backend="gloo", nprocs=2, usable_cpus=2,
        cwd=SAMPLES, script=Path("three_mistakes.py"),
    )  # fmt: skip
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_runner_reports_three_mistakes_and_stops_the_launch() -> None:
    findings = run_static_checks(three_mistakes_inputs())
    assert [f.check for f in findings] == [
        "target", "main-guard", "pickle", "pickle", "cuda-fork", "gpus", "port", "paths", "threads",
    ]  # fmt: skip
    assert sorted(f.check for f in preflight.failures(findings)) == ["main-guard", "pickle", "pickle"]
    error = preflight.preflight_error(findings)
    assert isinstance(error, PreflightError) and error.exit_code == 2
    assert "three_mistakes.py:25" in error.message and error.hint == FIX_MAIN_GUARD


def test_skipped_checks_are_not_run() -> None:
    findings = run_static_checks(three_mistakes_inputs(skip=frozenset({"main-guard", "pickle"})))
    assert preflight.preflight_error(findings) is None
    assert {"main-guard", "pickle"}.isdisjoint(f.check for f in findings)


def test_unknown_skip_name_is_a_usage_error_with_a_suggestion() -> None:
    assert preflight.validate_skip(["pickle", "port"]) == {"pickle", "port"}
    with pytest.raises(UsageError, match="unknown check 'pikle'") as info:
        preflight.validate_skip(["pikle"])
    assert "pickle" in info.value.hint


def test_render_table_shows_status_place_and_fix() -> None:
    table = render_table(run_static_checks(three_mistakes_inputs()))
    lines = table.splitlines()
    assert lines[0].split() == ["check", "status", "where", "finding"]
    row = next(line for line in lines if line.startswith("main-guard"))
    assert "FAIL" in row and "three_mistakes.py:25" in row
    assert any(line.strip() == f"fix: {FIX_MAIN_GUARD}" for line in lines)
    assert lines[-1] == "3 failed, 0 warning(s), 6 passed"


def test_static_checks_do_not_import_torch_or_user_code() -> None:
    code = (
        "import sys; from pathlib import Path; import launcher.preflight as p, launcher.platforms;"
        "import launcher.runtime.spawncheck;"
        f"s = Path({str(SAMPLES)!r});"
        "p.run_static_checks(p.StaticInputs(platform='linux', start_method='forkserver', backend='gloo',"
        " nprocs=2, usable_cpus=2, cwd=s, script=Path('three_mistakes.py')));"
        "p.check_target(None, 'pkg_heavy.train', 'main', s);"
        "heavy = ('torch', 'numpy', 'pkg_heavy', 'three_mistakes');"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in heavy);"
        "assert not bad, bad"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_static_checks_take_well_under_a_second() -> None:
    sourcechecks._SCANS.clear()  # time a cold read, not the cache
    start = time.perf_counter()
    run_static_checks(three_mistakes_inputs())
    assert time.perf_counter() - start < 1.0


def test_permission_failures_with_access_denied_faked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Runs as root too: root passes every os.access test, so the denial is faked.
    (tmp_path / "data").mkdir()
    monkeypatch.setattr("launcher.hostchecks.os.access", lambda path, mode: False)
    findings = check_paths({"ckpt": "out", "data": "data"}, tmp_path, None, writable={"ckpt"})
    assert [(f.status, f.message.split(":")[0]) for f in findings] == [("fail", "ckpt"), ("fail", "data")]
