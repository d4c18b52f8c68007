"""How a function entrypoint is called: with the context or without it, and whether the arguments fit.

The rule: a function whose first parameter can be given by position (``main(ctx)``,
``main(ctx, *args, epochs=20)``) is called as ``fn(ctx, *args, **kwargs)``; one without
such a parameter (``main()``, ``main(*argv)``, ``main(*, epochs)``, ``main(**kwargs)``) as
``fn(*args, **kwargs)``, and forms its own process group (``launcher.init()``) if it wants one.

Shared by preflight (a signature read from the source, before anything starts), the
Python API (the live function) and the worker (the imported function, before calling it).
Plain ``inspect``; never imports torch.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
CALL_HINT = "a function entrypoint takes args: and what follows -- by position, kwargs: by name"


class _Context:
    """Stands for the context in a trial binding and in messages."""

    def __repr__(self) -> str:
        return "ctx"


def takes_context(signature: inspect.Signature) -> bool:
    """Whether the function's first parameter can be given by position: it receives the context there."""
    first = next(iter(signature.parameters.values()), None)
    return first is not None and first.kind in _POSITIONAL


def call_problem(name: str, signature: inspect.Signature, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str | None:
    """One line saying why ``name`` cannot be called with these arguments, or None when they fit."""
    positional = [_Context(), *args] if takes_context(signature) else list(args)
    try:
        signature.bind(*positional, **kwargs)
    except TypeError as error:
        call = ", ".join([*map(repr, positional), *(f"{key}={value!r}" for key, value in kwargs.items())])
        short = name.rpartition(":")[2]
        return f"{name}{signature} cannot be called as {short}({call}): {error}"
    return None
