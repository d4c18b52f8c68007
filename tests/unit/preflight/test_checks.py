"""The preflight runner: every check from one StaticInputs, the table, --skip-check, and no heavy imports."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from launcher.errors import PreflightError, UsageError
from launcher.hints import FIX_MAIN_GUARD
from launcher.preflight.checks import StaticInputs, run_static_checks, validate_skip
from launcher.preflight.findings import failures, preflight_error, render_table

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "tests" / "samples" / "spawn"


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
    assert sorted(f.check for f in failures(findings)) == ["main-guard", "pickle", "pickle"]
    error = preflight_error(findings)
    assert isinstance(error, PreflightError) and error.exit_code == 2
    assert "three_mistakes.py:25" in error.message
    assert error.hint == f"{FIX_MAIN_GUARD}; or --skip-check main-guard"


def test_skipped_checks_are_not_run() -> None:
    findings = run_static_checks(three_mistakes_inputs(skip=frozenset({"main-guard", "pickle"})))
    assert preflight_error(findings) is None
    assert {"main-guard", "pickle"}.isdisjoint(f.check for f in findings)


def test_unknown_skip_name_is_a_usage_error_with_a_suggestion() -> None:
    assert validate_skip(["pickle", "port"]) == {"pickle", "port"}
    with pytest.raises(UsageError, match="unknown check 'pikle'") as info:
        validate_skip(["pikle"])
    assert "pickle" in info.value.hint


def test_render_table_shows_status_place_and_fix() -> None:
    table = render_table(run_static_checks(three_mistakes_inputs()))
    lines = table.splitlines()
    assert lines[0].split() == ["check", "status", "where", "finding"]
    row = next(line for line in lines if line.startswith("main-guard"))
    assert "FAIL" in row and "three_mistakes.py:25" in row
    assert any(line.strip() == f"fix: {FIX_MAIN_GUARD}; or --skip-check main-guard" for line in lines)
    fixes = [line.strip() for line in lines if line.strip().startswith("fix:")]
    assert len(fixes) == 3 and all(fix.endswith(("--skip-check main-guard", "--skip-check pickle")) for fix in fixes)
    assert lines[-1] == "3 failed, 0 warning(s), 6 passed"


def test_static_checks_do_not_import_torch_or_user_code() -> None:
    code = (
        "import sys; from pathlib import Path; import launcher.preflight.checks as p, launcher.platforms;"
        "import launcher.preflight.target as target;"
        f"s = Path({str(SAMPLES)!r});"
        "p.run_static_checks(p.StaticInputs(platform='linux', start_method='forkserver', backend='gloo',"
        " nprocs=2, usable_cpus=2, cwd=s, script=Path('three_mistakes.py')));"
        "target.check_target(None, 'pkg_heavy.train', 'main', s);"
        "heavy = ('torch', 'numpy', 'pkg_heavy', 'three_mistakes');"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in heavy);"
        "assert not bad, bad"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
