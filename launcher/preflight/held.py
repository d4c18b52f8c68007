"""Which lambdas and local functions a value keeps, through the names and scopes of one file.

``HeldReader`` binds each scope's functions and the names whose values keep lambdas
(``tfm = Compose([Lambda(lambda x: x)])``, ``steps.append(...)``, a function's
``return``, a class that stores one on ``self``); ``scan`` asks it what an expression
handed to another process carries. Never imports torch or the user's code.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from launcher.preflight.calls import CallReader
from launcher.preflight.syntax import is_main_guard, kept_functions, statements, walk_outside_lambdas
from launcher.preflight.values import Counts


@dataclass
class Scope:
    qualname: str
    kind: str  # "module" | "function" | "class"
    parent: Scope | None
    defs: dict[str, tuple[str, int, bool]] = field(default_factory=dict)  # name -> (qualname, line, guard)
    held: dict[str, list[str]] = field(default_factory=dict)  # name bound to a value holding lambdas -> labels
    dataset: bool = False

    @property
    def region(self) -> str:
        """The function whose call runs this code, or ``<module>`` for import time."""
        scope: Scope | None = self
        while scope is not None and scope.kind == "class":
            scope = scope.parent
        return "<module>" if scope is None or scope.kind == "module" else scope.qualname


class HeldReader(CallReader):
    """The lambdas kept by names, calls and classes of one file (labels read "lambda at train.py:42")."""

    def __init__(self, aliases: dict[str, str], counts: Counts, file: str, returns_held: dict[str, list[str]]) -> None:
        super().__init__(aliases, counts)
        self.file = file
        self.returns_held = returns_held  # function -> labels of the lambdas its result keeps
        self.class_held: dict[str, list[str]] = {}  # class -> labels of lambdas its methods store on self
        self.optional: set[str] = set()  # labels bound only when an ``if`` holds (an option, not the default)
        self.bound: dict[int, Scope] = {}  # id of a module-level def -> its scope, bound once

    def bind_classes(self, body: list[ast.stmt]) -> None:
        """The file's classes: datasets, loaders, processes, and those that keep lambdas on ``self``."""
        self.read_classes(body)
        for stmt, _ in statements(body, False):
            if not isinstance(stmt, ast.ClassDef):
                continue
            held = [
                f"lambda at {self.file}:{sub.lineno}"
                for node in ast.walk(stmt)
                if isinstance(node, ast.Assign) and any(is_self_attribute(t) for t in node.targets)
                for sub in kept_functions(node.value)
                if isinstance(sub, ast.Lambda)
            ]
            if held:
                self.class_held[stmt.name] = held

    def offenders(self, node: ast.expr, scope: Scope) -> list[str]:
        """Labels of lambdas and local (or guard-only) functions inside an expression."""
        found: list[str] = []
        called = {id(sub.func) for sub in ast.walk(node) if isinstance(sub, ast.Call)}
        for sub in walk_outside_lambdas(node):
            if isinstance(sub, ast.Lambda):
                found.append(f"lambda at {self.file}:{sub.lineno}")
            elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load) and id(sub) not in called:
                found += self.labels_for_name(sub.id, scope)
            elif isinstance(sub, ast.Call):
                found += self.call_held(sub)
        return found

    def call_held(self, call: ast.Call) -> list[str]:
        """Labels of the lambdas kept by what a call returns: an instance of a class that stores
        them on ``self``, or the result of a project function that returns them."""
        name = self.resolve(call.func) or ""
        return self.class_held.get(name, []) + self.returns_held.get(name, [])

    def held_by(self, value: ast.expr, scope: Scope) -> list[str]:
        """Labels of the lambdas and local functions that a value keeps (``Compose([Lambda(...)])``)."""
        found: list[str] = []
        for sub in kept_functions(value):
            if isinstance(sub, ast.Lambda):
                found.append(f"lambda at {self.file}:{sub.lineno}")
            elif isinstance(sub, ast.Name):
                found += self.labels_for_name(sub.id, scope)
        if isinstance(value, ast.Call):
            found += self.call_held(value)
        return found

    def labels_for_name(self, name: str, scope: Scope) -> list[str]:
        s: Scope | None = scope
        while s is not None:
            if s.kind != "class" or s is scope:
                if name in s.held:
                    return s.held[name]
                if name in s.defs:
                    qual, line, guard = s.defs[name]
                    if s.kind == "function":
                        return [f"local function {qual} at {self.file}:{line}"]
                    if s.kind == "module" and guard:
                        return [f"function {name} defined under the __main__ guard at {self.file}:{line}"]
                    return []
            s = s.parent
        return []

    def def_qualname(self, name: str, scope: Scope) -> str | None:
        """The qualified name of the file's function that ``name`` calls from ``scope``."""
        s: Scope | None = scope
        while s is not None:
            if (s.kind != "class" or s is scope) and name in s.defs:
                return s.defs[name][0]
            s = s.parent
        return None

    def bind_returns(self, body: list[ast.stmt], module: Scope) -> None:
        """Module-level functions whose result keeps lambdas (``return Compose(steps)`` after
        ``steps.append(Lambda(lambda x: x))``), in source order."""
        for stmt in body:
            if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            inner = Scope(stmt.name, "function", module)
            self.bind_body(stmt.body, inner, guarded=False)
            self.bound[id(stmt)] = inner  # the walk reuses it
            labels = [
                label
                for node, _ in statements(stmt.body, False)
                if isinstance(node, ast.Return) and node.value is not None
                for label in self.held_by(node.value, inner)
            ]
            if labels:
                self.returns_held[stmt.name] = labels

    def bind_body(self, body: list[ast.stmt], scope: Scope, guarded: bool) -> None:
        """Record the functions of one scope's body, then the names bound to values holding lambdas."""
        found = list(statements(body, guarded))
        for stmt, in_guard in found:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                qual = stmt.name if scope.kind == "module" else (
                    f"{scope.qualname}.<locals>.{stmt.name}" if scope.kind == "function"
                    else f"{scope.qualname}.{stmt.name}"
                )  # fmt: skip
                scope.defs[stmt.name] = (qual, stmt.lineno, in_guard)
        optional = {
            id(inner)
            for stmt, _ in found
            if isinstance(stmt, ast.If) and not is_main_guard(stmt.test)
            for inner in ast.walk(stmt)
        }
        for stmt, _ in found:
            labels: list[str] = []
            grown = _grown_list(stmt)
            if grown is not None:
                labels = self.held_by(grown[1], scope)
                if labels:
                    scope.held[grown[0]] = [*scope.held.get(grown[0], []), *labels]
            elif isinstance(stmt, ast.Assign):
                value = stmt.value
                names = [t.id for t in stmt.targets if isinstance(t, ast.Name)]
                for name in names:
                    if isinstance(value, ast.Lambda):
                        kept = [f"lambda {name} at {self.file}:{value.lineno}"]
                    else:
                        kept = [] if isinstance(value, ast.Name) else self.held_by(value, scope)
                    if kept:
                        scope.held[name] = kept
                        labels += kept
            if id(stmt) in optional:
                self.optional.update(labels)


def _grown_list(stmt: ast.stmt) -> tuple[str, ast.expr] | None:
    """``name.append(x)`` / ``name.extend(x)`` / ``name.insert(i, x)`` / ``name += x``: (name, x)."""
    if isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
        return stmt.target.id, stmt.value
    call = stmt.value if isinstance(stmt, ast.Expr) else None
    if (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and isinstance(call.func.value, ast.Name)
        and call.func.attr in ("append", "extend", "insert")
        and call.args
    ):
        return call.func.value.id, call.args[-1]
    return None


def is_self_attribute(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self"
