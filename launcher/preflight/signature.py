"""Whether a function entrypoint can take the job's arguments, read from its source before anything starts.

The signature comes from the ``def`` in the file's AST (defaults and annotations as
written); ``launcher.calls`` decides whether the context is passed and binds the
arguments. A function this reader cannot see for sure (decorated, assigned, imported,
a method) is left to the worker, which checks the imported function before calling it.

Never imports torch or the user's code.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from launcher.calls import CALL_HINT, call_problem
from launcher.preflight.findings import Finding


class _Source:
    """A default or an annotation shown as its source text."""

    def __init__(self, node: ast.expr) -> None:
        self.text = ast.unparse(node)

    def __repr__(self) -> str:
        return self.text


def static_signature(tree: ast.Module, function: str) -> tuple[inspect.Signature, int] | None:
    """The signature of the module-level ``def function`` and its line; None when the source cannot say for sure."""
    last: ast.stmt | None = None
    for statement in tree.body:
        if function in _bound_names(statement):
            last = statement
    if not isinstance(last, ast.FunctionDef | ast.AsyncFunctionDef) or last.decorator_list:
        return None
    return _signature(last.args, last.returns), last.lineno


def _bound_names(statement: ast.stmt) -> set[str]:
    """The module-level names one statement binds (a def, a class, an assignment, an import)."""
    if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {statement.name}
    if isinstance(statement, ast.Import | ast.ImportFrom):
        return {(alias.asname or alias.name).split(".")[0] for alias in statement.names}
    return {node.id for node in ast.walk(statement) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}


def _signature(arguments: ast.arguments, returns: ast.expr | None) -> inspect.Signature:
    kind = inspect.Parameter
    positional = [*arguments.posonlyargs, *arguments.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(arguments.defaults)) + list(arguments.defaults)
    kinds = [kind.POSITIONAL_ONLY] * len(arguments.posonlyargs) + [kind.POSITIONAL_OR_KEYWORD] * len(arguments.args)
    parameters = [_parameter(arg, how, default) for arg, how, default in zip(positional, kinds, defaults, strict=True)]
    if arguments.vararg is not None:
        parameters.append(_parameter(arguments.vararg, kind.VAR_POSITIONAL, None))
    parameters += [_parameter(arg, kind.KEYWORD_ONLY, default)
                   for arg, default in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True)]
    if arguments.kwarg is not None:
        parameters.append(_parameter(arguments.kwarg, kind.VAR_KEYWORD, None))
    annotation = _Source(returns) if returns is not None else inspect.Signature.empty
    return inspect.Signature(parameters, return_annotation=annotation)


def _parameter(arg: ast.arg, kind: Any, default: ast.expr | None) -> inspect.Parameter:
    return inspect.Parameter(
        arg.arg, kind,
        default=_Source(default) if default is not None else inspect.Parameter.empty,
        annotation=_Source(arg.annotation) if arg.annotation is not None else inspect.Parameter.empty)


def check_call(
    source: Path, where: str, function: str, args: Sequence[str], kwargs: Mapping[str, Any]
) -> Finding | None:
    """A failing ``target`` finding when ``function`` cannot take ``args`` and ``kwargs``.

    None when the arguments fit, or when the source cannot say (the worker checks then). ``where``:
    the file as shown to the user.
    """
    if "." in function:
        return None  # a method or a nested attribute: the worker checks it
    try:
        tree = ast.parse(source.read_bytes(), str(source))
    except (OSError, SyntaxError, ValueError):
        return None  # the target check reports an unreadable file
    found = static_signature(tree, function)
    if found is None:
        return None
    signature, line = found
    problem = call_problem(function, signature, args, kwargs)
    return None if problem is None else Finding("target", "fail", f"{where}:{line}", problem, CALL_HINT)
