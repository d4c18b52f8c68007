"""In a rank: pytest's assertion rewriting for the modules pytest rewrote, and its comparison explanations.

The rank has no pytest ``Config``: it rewrites the modules the pytest process
rewrote (the test module, conftests, ``register_assert_rewrite`` modules) with
``rewrite_asserts``, which needs none, and gives the rewritten asserts pytest's
explanations of ``==``, ``in`` and the like (``assertrepr_compare``) with the
pytest process's verbosity. The server compiles the test module before it forks
(``rewritten_code``): the ranks find the code ready. Both use pytest internals: where they change, the
rank falls back to plain asserts or to the short explanation, never to a failure
of its own.
"""

from __future__ import annotations

import ast
import importlib.abc
import importlib.machinery
import importlib.util
import os
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import CodeType, ModuleType


class AssertRewriter(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """A meta-path finder that rewrites the asserts of the named modules (and of the file ``path``)."""

    def __init__(self, names: frozenset[str], path: str) -> None:
        self._names = names
        self._path = path

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
            return None
        if fullname not in self._names and spec.origin != self._path:
            return None
        return importlib.util.spec_from_file_location(
            fullname, spec.origin, loader=self, submodule_search_locations=spec.submodule_search_locations)

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return None  # the default module

    def exec_module(self, module: ModuleType) -> None:
        origin = str(module.__spec__.origin if module.__spec__ else module.__file__)
        exec(rewritten_code(origin), module.__dict__)


_compiled: dict[str, tuple[int, CodeType]] = {}  # path → (mtime_ns, code): filled by the server before it forks


def rewritten_code(path: str) -> CodeType:
    """The module at ``path`` compiled with its asserts rewritten (the server's copy while the file is unchanged)."""
    from _pytest.assertion.rewrite import rewrite_asserts

    changed = os.stat(path).st_mtime_ns
    known = _compiled.get(path)
    if known is not None and known[0] == changed:
        return known[1]
    with open(path, "rb") as handle:
        source = handle.read()
    tree = ast.parse(source, filename=path)
    rewrite_asserts(tree, source, path)
    code = compile(tree, path, "exec", dont_inherit=True)
    _compiled[path] = (changed, code)
    return code


def explain_comparisons(verbosity: int, diff_style: str) -> None:
    """Rewritten asserts explain comparisons as pytest's ``pytest_assertrepr_compare`` would."""
    from _pytest.assertion import util

    def explain(op: str, left: object, right: object) -> str | None:
        try:
            lines = list(util.assertrepr_compare(op=op, left=left, right=right, verbose=verbosity,
                                                 highlighter=util.dummy_highlighter,
                                                 assertion_text_diff_style=diff_style))  # type: ignore[arg-type]
        except Exception:  # another pytest's signature, or a repr that raised: the short form
            return None
        if not lines:
            return None
        return "\n~".join(line.replace("\n", "\\n") for line in lines).replace("%", "%%")

    util._reprcompare = explain
