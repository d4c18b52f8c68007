"""Preflight reads a function entrypoint's signature from its source and refuses arguments that do not fit."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

import pytest

from launcher.errors import PreflightError
from launcher.preflight.checks import StaticInputs, run_static_checks
from launcher.preflight.findings import preflight_error
from launcher.preflight.signature import check_call, static_signature

pytestmark = pytest.mark.timeout(30)

SIGNATURES = [
    "def main(ctx, epochs: int = 20, lr: float = 0.01) -> float: ...",
    "def main(): ...",
    "def main(ctx, /, a, *argv: str, b=(1, 2), c, **kwargs) -> None: ...",
    "async def main(*, name='x'): ...",
]


@pytest.mark.parametrize("source", SIGNATURES)
def test_the_signature_read_from_the_source_is_the_one_python_sees(source: str) -> None:
    namespace: dict[str, Any] = {}
    exec(compile(source, "train.py", "exec", dont_inherit=True), namespace)  # annotations evaluated, as in most files
    found = static_signature(ast.parse(source), "main")
    assert found is not None and str(found[0]) == str(inspect.signature(namespace["main"]))


@pytest.mark.parametrize("source", [
    "import functools\n@functools.cache\ndef main(ctx): ...",  # a decorator may change the signature
    "def main(ctx): ...\nmain = other",  # rebound after the def
    "from pkg.train import main",
    "class main: ...",
])  # fmt: skip
def test_a_function_the_source_cannot_tell_for_sure_is_left_to_the_worker(source: str, tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(source)
    assert check_call(tmp_path / "train.py", "train.py", "main", ["x", "y", "z"], {"nope": 1}) is None


@pytest.mark.parametrize(("source", "args", "kwargs", "fits"), [
    ("def main(ctx, *argv, epochs=20): ...", ["--lr", "0.05"], {"epochs": 20}, True),
    ("def main(): ...", [], {}, True),  # called without the context
    ("def main(): ...", ["x"], {}, False),
    ("def main(ctx): ...", [], {"epochs": 3}, False),
])  # fmt: skip
def test_arguments_are_bound_as_the_worker_will_call(
    source: str, args: list[str], kwargs: dict[str, Any], fits: bool, tmp_path: Path
) -> None:
    (tmp_path / "train.py").write_text(source)
    assert (check_call(tmp_path / "train.py", "train.py", "main", args, kwargs) is None) is fits


def test_a_call_that_cannot_bind_stops_the_launch_in_one_line_at_the_def(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # files are shown relative to the working directory
    (tmp_path / "train.py").write_text('"""A job."""\n\ndef main(ctx, epochs: int = 20):\n    pass\n')
    inputs = StaticInputs(platform="linux", start_method="forkserver", backend="gloo", nprocs=2, usable_cpus=2,
                          cwd=tmp_path, script=tmp_path / "train.py", function="main", args=("--extra-arg",),
                          kwargs={"epochs": 20})
    error = preflight_error(run_static_checks(inputs))
    assert isinstance(error, PreflightError) and error.exit_code == 2
    assert error.message == ("target: train.py:3: main(ctx, epochs: int = 20) cannot be called as "
                             "main(ctx, '--extra-arg', epochs=20): multiple values for argument 'epochs'")
    assert "kwargs:" in error.hint
