"""Function entrypoints are called by their signature: without the context when they take none, never blindly."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(60)


def test_a_function_without_parameters_is_called_without_the_context(launcher):
    ran = launcher(["--nprocs", 2, "funcs_signatures.py:no_context"])
    assert ran.returncode == 0, ran.stderr
    assert "no context: rank 1 of 2" in ran.stdout and "no context: rank 0 of 2" in ran.stdout


def test_arguments_a_decorated_function_cannot_take_fail_each_rank_in_one_line_before_the_call(launcher):
    ran = launcher(["--nprocs", 2, "funcs_signatures.py:decorated", "1", "2"])
    line = "decorated(ctx, epochs=3) cannot be called as decorated(ctx, '1', '2'): too many positional arguments"
    assert ran.returncode == 1, ran.stderr
    (summary,) = [text for text in ran.stderr.splitlines() if text.startswith("launcher: job failed at ")]
    assert line in summary, ran.stderr  # the first rank to fail is the root cause; the other may be stopped first
    assert "Traceback" not in ran.stderr and "decorated: " not in ran.stdout
