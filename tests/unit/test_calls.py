"""How a function entrypoint is called: the context passed or not, and one line when the arguments do not fit."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from launcher.calls import call_problem, takes_context

pytestmark = pytest.mark.timeout(30)


def with_ctx(ctx: Any, epochs: int = 20) -> None: ...
def no_parameters() -> None: ...
def only_varargs(*argv: str) -> None: ...
def keyword_only(*, epochs: int = 20) -> None: ...
def only_kwargs(**kwargs: Any) -> None: ...
def positional_only(ctx: Any, /, lr: float = 0.1) -> None: ...


@pytest.mark.parametrize(("fn", "takes"), [
    (with_ctx, True), (positional_only, True),
    (no_parameters, False), (only_varargs, False), (keyword_only, False), (only_kwargs, False),
])  # fmt: skip
def test_the_context_goes_to_a_first_parameter_that_can_be_given_by_position(fn: Any, takes: bool) -> None:
    assert takes_context(inspect.signature(fn)) is takes


@pytest.mark.parametrize(("fn", "args", "kwargs"), [
    (with_ctx, (), {"epochs": 3}), (with_ctx, ("3",), {}), (no_parameters, (), {}),
    (only_varargs, ("--lr", "0.1"), {}), (keyword_only, (), {"epochs": 3}), (only_kwargs, (), {"a": 1}),
])  # fmt: skip
def test_arguments_that_fit_pass(fn: Any, args: tuple[str, ...], kwargs: dict[str, Any]) -> None:
    assert call_problem("f", inspect.signature(fn), args, kwargs) is None


def test_a_positional_argument_that_meets_a_keyword_names_signature_call_and_reason() -> None:
    problem = call_problem("train.py:main", inspect.signature(with_ctx), ["--extra-arg"], {"epochs": 20})
    assert problem == ("train.py:main(ctx: 'Any', epochs: 'int' = 20) -> 'None' cannot be called as "
                       "main(ctx, '--extra-arg', epochs=20): multiple values for argument 'epochs'")


@pytest.mark.parametrize(("fn", "args", "kwargs", "reason"), [
    (no_parameters, ("x",), {}, "too many positional arguments"),
    (keyword_only, (), {"lr": 1}, "got an unexpected keyword argument 'lr'"),
    (positional_only, ("0.1",), {"lr": 1}, "multiple values for argument 'lr'"),
])  # fmt: skip
def test_arguments_that_do_not_fit_say_why(fn: Any, args: tuple[str, ...], kwargs: dict[str, Any], reason: str) -> None:
    problem = call_problem("f", inspect.signature(fn), args, kwargs)
    assert problem is not None and problem.endswith(reason) and "\n" not in problem


def test_launch_refuses_arguments_the_function_cannot_take_before_anything_starts() -> None:
    from launcher.api import launch
    from launcher.errors import TargetError

    with pytest.raises(TargetError, match=r"cannot be called as with_ctx\(ctx, 1, 2\): too many positional arguments"):
        launch(with_ctx, nprocs=2, args=(1, 2))
