"""A rank that exits 2 with argparse's usage error: the hint says it was the script's parser, and names a launcher
flag written after the target."""

from __future__ import annotations

import pytest

from launcher.cli.script_usage import script_usage_hint

pytestmark = pytest.mark.timeout(30)

USAGE = "usage: train.py [-h] [--epochs EPOCHS]"


@pytest.mark.parametrize(("exitcode", "error", "expected"), [
    (2, "train.py: error: unrecognized arguments: --nprocs 4",
     "--nprocs is a launcher flag, but came after the target and so went to the script: put it before the target"),
    (2, "train.py: error: unrecognized arguments: --max-restarts=2 --log-dir runs --epochs-x 3",
     "--max-restarts, --log-dir are launcher flags, but came after the target and so went to the script: put them "
     "before the target"),
    (2, "train.py: error: unrecognized arguments: --learning-rate 0.1",
     "this exit code 2 came from the script's own argument parser, not from the launcher: check the script's "
     "arguments after the target; launcher flags go before the target"),
    (1, "train.py: error: unrecognized arguments: --nprocs 4", None),  # not argparse's exit code
    (2, "something else went wrong", None),  # exit 2 without argparse's error line
])
def test_a_scripts_own_usage_error(exitcode: int, error: str, expected: str | None) -> None:
    assert script_usage_hint(exitcode, (USAGE, error)) == expected


def test_no_usage_line_no_hint() -> None:
    assert script_usage_hint(2, ("train.py: error: unrecognized arguments: --nprocs 4",)) is None


def test_a_launcher_flag_given_to_the_script_is_named_when_argparse_reports_another_error_first() -> None:
    error = "train.py: error: the following arguments are required: --lr"
    assert script_usage_hint(2, (USAGE, error), ("--nprocs=2", "--epochs", "3")) == (
        "--nprocs is a launcher flag, but came after the target and so went to the script: put it before the target")
    hint = script_usage_hint(2, (USAGE, error), ("--epochs", "3"))
    assert hint is not None and hint.startswith("this exit code 2 came from the script")
