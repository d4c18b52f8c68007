"""Small readers of Python syntax trees for the preflight scanner: imports, guards, literals, walks.

Pure functions over ``ast`` nodes; never imports torch or the user's code.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable, Iterator

# Callables whose last name starts with one of these keep the functions they are given
# (a transform, a partial); other lower-case calls (``sorted(key=lambda ...)``) use them and return.
_KEEPERS = ("partial",)


def is_main_guard(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = (test.left, test.comparators[0])
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    consts = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return len(names) == 1 and len(consts) == 1


def import_aliases(nodes: Iterable[ast.AST]) -> dict[str, str]:
    """Local name -> dotted import path, from every import among the file's nodes (``.data.f`` for
    ``from .data import f``)."""
    out: dict[str, str] = {}
    for node in nodes:
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    out[a.asname] = a.name
                else:
                    head = a.name.split(".")[0]
                    out[head] = head
        elif isinstance(node, ast.ImportFrom) and (node.module or node.level):
            prefix = "." * node.level + (f"{node.module}." if node.module else "")
            for a in node.names:
                out[a.asname or a.name] = f"{prefix}{a.name}"
    return out


@functools.lru_cache(maxsize=4096)
def canonical(name: str) -> str:
    """Fold re-exports: torch.multiprocessing.Pool is multiprocessing.Pool, and so on."""
    for prefix in ("torch.multiprocessing.spawn.", "torch.multiprocessing."):
        if name.startswith(prefix):
            rest = name[len(prefix) :]
            torch_only = rest in ("spawn", "start_processes")
            return f"torch.multiprocessing.{rest}" if torch_only else f"multiprocessing.{rest}"
    for prefix in ("multiprocessing.pool.", "multiprocessing.context.", "multiprocessing.process."):
        if name.startswith(prefix):
            return "multiprocessing." + name[len(prefix) :]
    if name.startswith("concurrent.futures.process."):
        return "concurrent.futures." + name[len("concurrent.futures.process.") :]
    return name


def literal_str(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def call_arg(call: ast.Call, keyword: str, position: int | None) -> ast.expr | None:
    """The argument given by keyword, or at ``position`` (not through ``*args``)."""
    for kw in call.keywords:
        if kw.arg == keyword:
            return kw.value
    if position is not None and position < len(call.args):
        if any(isinstance(a, ast.Starred) for a in call.args[: position + 1]):
            return None
        return call.args[position]
    return None


def last_name(node: ast.expr) -> str:
    """``Lambda`` of ``transforms.Lambda``, ``f`` of ``f``; "" for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def kept_functions(node: ast.expr) -> Iterator[ast.expr]:
    """Lambdas and names that a value holds on to: inside literals and constructor calls
    (``Compose([Lambda(lambda x: x)])``, ``partial(f, 1)``), not arguments that a function
    uses and drops (``sorted(xs, key=lambda x: x)``)."""
    if isinstance(node, (ast.Lambda, ast.Name)):
        yield node
    elif isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        for element in node.elts:
            yield from kept_functions(element)
    elif isinstance(node, ast.Dict):
        for value in node.values:
            yield from kept_functions(value)
    elif isinstance(node, ast.Call):
        name = last_name(node.func)
        if name[:1].isupper() or name in _KEEPERS:
            for arg in [*node.args, *(kw.value for kw in node.keywords)]:
                yield from kept_functions(arg.value if isinstance(arg, ast.Starred) else arg)


def cuda_device_literal(node: ast.expr | None) -> bool:
    """``"cuda"``, ``"cuda:0"``, ``f"cuda:{rank}"``, or a conditional with one of them as a branch."""
    if node is None:
        return False
    text = literal_str(node)
    if text is not None:
        return text.startswith("cuda")
    if isinstance(node, ast.JoinedStr) and node.values:
        first = node.values[0]
        return isinstance(first, ast.Constant) and str(first.value).startswith("cuda")
    if isinstance(node, ast.IfExp):
        return cuda_device_literal(node.body) or cuda_device_literal(node.orelse)
    return False


def statements(body: list[ast.stmt], guarded: bool) -> Iterator[tuple[ast.stmt, bool]]:
    """The statements of one scope, into if/for/while/with/try blocks but not into defs or classes."""
    for stmt in body:
        yield stmt, guarded
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        inner_guard = guarded or (isinstance(stmt, ast.If) and is_main_guard(stmt.test))
        for name in ("body", "orelse", "finalbody"):
            block = getattr(stmt, name, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                yield from statements(block, inner_guard if name == "body" else guarded)
        for handler in getattr(stmt, "handlers", []):
            yield from statements(handler.body, guarded)


def plain_names(body: list[ast.stmt], guarded: bool) -> frozenset[str]:
    """Names bound at module level by assignment, import or class, inside (or outside) the guard."""
    names: set[str] = set()
    for stmt, in_guard in statements(body, False):
        if in_guard != guarded:
            continue
        if isinstance(stmt, ast.ClassDef):
            names.add(stmt.name)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            for alias in stmt.names:
                names.add(alias.asname or alias.name.split(".")[0])
    return frozenset(names)


def walk_outside_lambdas(node: ast.AST) -> Iterator[ast.AST]:
    """``ast.walk`` that yields a lambda but does not enter its body."""
    yield node
    if isinstance(node, ast.Lambda):
        return
    for child in ast.iter_child_nodes(node):
        yield from walk_outside_lambdas(child)
