"""What a script's values hold: keyword dicts built for ``f(**kwargs)``, and whether a count is above zero.

``kw = {"num_workers": 1}``, ``kw = dict(num_workers=n)``, ``kw.update(other)``,
``kw["num_workers"] = 2`` and ``{**a, **b}`` are followed; anything else (a parameter,
``vars(args)``, a call) makes the dict unknown, and its lookups answer None.
Never imports torch or the user's code.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

from launcher.preflight.syntax import call_arg, literal_str

Entries = dict[str, ast.expr]


class KeywordDicts:
    """Dicts bound to names, by (region, name); a region's lookup falls back to the module's."""

    def __init__(self) -> None:
        self._dicts: dict[tuple[str, str], Entries | None] = {}

    def entries(self, node: ast.expr, region: str) -> Entries | None:
        """The keys and value expressions of a dict expression, or None when they cannot be known."""
        if isinstance(node, ast.Dict):
            out: Entries = {}
            for key, value in zip(node.keys, node.values, strict=True):
                name = None if key is None else literal_str(key)
                inner = self.entries(value, region) if key is None else {name: value} if name else None
                if inner is None:
                    return None
                out.update(inner)
            return out
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
            return self._merged({}, node, region)
        if isinstance(node, ast.Name):
            known = self._dicts.get((region, node.id), self._dicts.get(("<module>", node.id)))
            return None if known is None else dict(known)
        return None

    def assign(self, name: str, value: ast.expr, region: str) -> None:
        self._dicts[(region, name)] = self.entries(value, region)

    def update(self, name: str, call: ast.Call, region: str) -> None:
        """``name.update(...)`` on a dict this scope knows."""
        key = (region, name) if (region, name) in self._dicts else ("<module>", name)
        current = self._dicts.get(key)
        if current is not None:
            self._dicts[key] = self._merged(current, call, region)

    def set_item(self, name: str, index: ast.expr, value: ast.expr, region: str) -> None:
        key = (region, name) if (region, name) in self._dicts else ("<module>", name)
        current = self._dicts.get(key)
        if current is not None:
            text = literal_str(index)
            self._dicts[key] = None if text is None else {**current, text: value}

    def _merged(self, base: Entries, call: ast.Call, region: str) -> Entries | None:
        """``base`` updated as ``dict(...)`` / ``.update(...)`` with ``call``'s arguments would."""
        out = dict(base)
        for arg in call.args:
            inner = self.entries(arg, region)
            if inner is None:
                return None
            out.update(inner)
        for kw in call.keywords:
            if kw.arg is None:
                inner = self.entries(kw.value, region)
                if inner is None:
                    return None
                out.update(inner)
            else:
                out[kw.arg] = kw.value
        return out


_CPU_COUNTS = ("cpu_count", "sched_getaffinity")


class Counts:
    """Whether a count (``num_workers``) is above zero in the script's default configuration.

    Reads ``parser.add_argument("--workers", default=2)`` defaults, ``args.workers = ...`` and
    ``workers = ...`` assignments of the whole file, a function parameter's default and the
    arguments the file's calls give it; ``os.cpu_count()``, ``min``/``max``/``int`` of such.
    """

    def __init__(self, nodes: Iterable[ast.AST], project_options: frozenset[str] = frozenset()) -> None:
        self.project_options = project_options  # options above zero by default in other project files
        self._options: dict[str, list[ast.expr]] = {}  # attribute name -> default and assigned values
        self._names: dict[str, list[ast.expr]] = {}  # plain name -> assigned values
        self._params: dict[str, list[str]] = {}  # function -> its parameters, in order
        self._defaults: dict[tuple[str, str], ast.expr] = {}  # (function, parameter) -> default
        self._calls: dict[str, list[ast.Call]] = {}  # function name -> the file's calls of it
        for node in nodes:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self._read_params(node)
            elif isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute)):
                name = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
                self._calls.setdefault(name, []).append(node)
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        self._names.setdefault(target.id, []).append(node.value)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument":
                dest = _option_dest(node)
                default = next((kw.value for kw in node.keywords if kw.arg == "default"), None)
                if dest is not None and default is not None:
                    self._options.setdefault(dest, []).append(default)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
                        self._options.setdefault(target.attr, []).append(node.value)

    def positive_options(self) -> frozenset[str]:
        """The file's argparse options (and ``args.X`` assignments) above zero by default."""
        return frozenset(name for name in self._options if self.positive(ast.Attribute(ast.Name("args"), name)))

    def _read_params(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        args = [*node.args.posonlyargs, *node.args.args]
        self._params[node.name] = [a.arg for a in args]
        for arg, default in zip(args[len(args) - len(node.args.defaults) :], node.args.defaults, strict=True):
            self._defaults[(node.name, arg.arg)] = default
        for arg, kw_default in zip(node.args.kwonlyargs, node.args.kw_defaults, strict=True):
            if kw_default is not None:
                self._defaults[(node.name, arg.arg)] = kw_default

    def _values_of(self, name: str, region: str) -> list[ast.expr]:
        """What a plain name may hold in ``region``: its assignments, or as a parameter, its default
        and the arguments of the file's calls of the function."""
        values = list(self._names.get(name, []))
        function = region.rsplit(".", 1)[-1]
        params = self._params.get(function, [])
        if name in params:
            offset = 1 if params[:1] in (["self"], ["cls"]) else 0
            if (function, name) in self._defaults:
                values.append(self._defaults[(function, name)])
            for call in self._calls.get(function, []):
                given = call_arg(call, name, params.index(name) - offset)
                if given is not None:
                    values.append(given)
        return values

    def positive(self, node: ast.expr, region: str = "<module>", depth: int = 0) -> bool | None:
        """True: above zero as written or by default; False: a literal zero (or less); None: cannot tell."""
        if depth > 4:
            return None
        if isinstance(node, ast.Name):
            values = [self.positive(v, "<module>", depth + 1) for v in self._values_of(node.id, region)]
            return True if True in values else None
        if isinstance(node, ast.Constant):
            return node.value > 0 if isinstance(node.value, int) and not isinstance(node.value, bool) else None
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            values = [self.positive(v, region, depth + 1) for v in self._options.get(node.attr, [])]
            return True if True in values or node.attr in self.project_options else None
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in _CPU_COUNTS:
                return True
            args = [self.positive(a, region, depth + 1) for a in node.args]
            if name == "min" and args and all(a is True for a in args):
                return True
            if name in ("max", "int") and True in args:
                return True
        if isinstance(node, ast.IfExp):
            sides = {self.positive(node.body, region, depth + 1), self.positive(node.orelse, region, depth + 1)}
            return sides.pop() if len(sides) == 1 else None
        return None


def _option_dest(call: ast.Call) -> str | None:
    """The attribute an ``add_argument`` call fills: ``dest=``, else its first long option."""
    for kw in call.keywords:
        if kw.arg == "dest":
            return literal_str(kw.value)
    names = [literal_str(a) for a in call.args]
    longs = [n for n in names if n and n.startswith("--")]
    first = longs[0] if longs else next((n for n in names if n), None)
    return first.lstrip("-").replace("-", "_") if first else None
