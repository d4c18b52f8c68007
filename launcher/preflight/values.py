"""Keyword dicts that a scope builds for ``f(**kwargs)``, followed statement by statement.

``kw = {"num_workers": 1}``, ``kw = dict(num_workers=n)``, ``kw.update(other)``,
``kw["num_workers"] = 2`` and ``{**a, **b}`` are followed; anything else (a parameter,
``vars(args)``, a call) makes the dict unknown, and its lookups answer None.
Never imports torch or the user's code.
"""

from __future__ import annotations

import ast

from launcher.preflight.syntax import literal_str

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
