"""``launcher check``: its own help, ``--as`` / ``--platform``, and the table it prints (no process starts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.cli.check import split_check_options
from launcher.cli.main import main
from launcher.errors import UsageError
from launcher.preflight.findings import CHECK_DESCRIPTIONS

pytestmark = pytest.mark.timeout(60)

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "spawn"


def test_check_help_is_the_check_s_own_and_lists_every_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m launcher check") and "--as METHOD" in out and "--platform OS" in out
    listed = [line.split()[0] for line in out.split("checks (skip one with --skip-check NAME):\n")[1].splitlines()]
    assert listed == list(CHECK_DESCRIPTIONS)


@pytest.mark.parametrize(
    ("args", "as_method", "platform", "rest"),
    [
        (["--as", "spawn", "train.py", "--as", "x"], "spawn", None, ["train.py", "--as", "x"]),  # after TARGET: its own
        (["--nprocs", "2", "--platform=windows", "-m", "pkg.train"], None, "win32",
         ["--nprocs", "2", "-m", "pkg.train"]),
        (["--platform", "macos", "--as=forkserver", "--set", "a=1", "t.py"], "forkserver", "darwin",
         ["--set", "a=1", "t.py"]),
    ],
)
def test_check_options_come_before_the_target(
    args: list[str], as_method: str | None, platform: str | None, rest: list[str]
) -> None:
    options, remaining = split_check_options(args)
    assert (options.as_method, options.platform, remaining) == (as_method, platform, rest)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--as", "thread", "t.py"], "--as: 'thread' is not one of fork, forkserver, spawn"),
        (["--platform", "bsd", "t.py"], "--platform: 'bsd' is not one of linux, macos, windows"),
        (["--platform", "windows", "--as", "fork", "t.py"], "Windows has only spawn"),
        (["--as"], "--as needs a value"),
    ],
)
def test_bad_check_options_are_usage_errors(args: list[str], fragment: str) -> None:
    with pytest.raises(UsageError, match=fragment):
        split_check_options(args)


def test_as_spawn_turns_a_fork_only_warning_into_a_failure(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(SAMPLES)
    assert main(["check", "lambda_collate_fork.py"]) == 0
    assert capsys.readouterr().out.startswith("check ")  # judged as this host runs it: no note above the table
    assert main(["check", "--as", "fork", "lambda_collate_fork.py"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "judged as if started by fork"
    row = next(line for line in out.splitlines() if line.startswith("pickle"))
    assert "WARN" in row and "works under fork only" in row
    judged = {"spawn": "judged as if started by spawn", "windows": "judged as if on windows",
              "macos": "judged as if on macos"}
    for flags in (["--as", "spawn"], ["--platform", "windows"], ["--platform", "macos"]):
        assert main(["check", *flags, "lambda_collate_fork.py"]) == 2
        out = capsys.readouterr().out
        assert out.splitlines()[0] == judged[flags[1]]
        row = next(line for line in out.splitlines() if line.startswith("pickle"))
        assert "FAIL" in row and "cannot be pickled for spawn" in row
        assert "; or --skip-check pickle" in out


def test_the_target_row_shows_the_path_relative_to_the_working_directory(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(SAMPLES.parent)
    assert main(["check", str(SAMPLES / "guarded_spawn.py")]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("target"))
    assert row.split()[2:] == ["spawn/guarded_spawn.py", "spawn/guarded_spawn.py", "found"]
