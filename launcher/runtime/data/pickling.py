"""Will this object reach a spawned DataLoader worker? Find the part that cannot, and name it.

``unpicklable_part(obj)`` pickles into a sink that discards the bytes, so a
large in-memory dataset costs no memory, and tensors and arrays are skipped
(they always pickle; serialising them would only cost time). If pickling
fails it walks the object's attributes, items, closures and partials to the
innermost part that fails, and describes it as a user would find it in their
code: ``lambda at train.py:42``, ``local function make.<locals>.load at
data.py:10``, ``open file 'x.bin'``.

Never changes a start method; never imports the launch side.
"""

from __future__ import annotations

import functools
import io
import os
import pickle
import types
from typing import Any

import torch


class _NullSink(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        return len(b)


class _ProbePickler(pickle.Pickler):
    def persistent_id(self, obj: Any) -> Any:
        # Returned ids replace the object in the stream: tensors are not serialised.
        if isinstance(obj, (torch.Tensor, torch.UntypedStorage)) or _is_ndarray(obj):
            return id(obj)
        return None


def _is_ndarray(obj: Any) -> bool:
    # By name: numpy is optional, and an array always pickles.
    return type(obj).__module__ == "numpy" and type(obj).__name__ == "ndarray"


def pickles(obj: Any) -> bool:
    """Whether ``obj`` pickles (what spawn and forkserver need of a worker's arguments)."""
    try:
        _ProbePickler(_NullSink(), protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    except Exception:
        return False
    return True


def describe(obj: Any) -> str:
    """How a user would find ``obj`` in their code."""
    code = getattr(obj, "__code__", None)
    if isinstance(code, types.CodeType):
        where = f"{os.path.basename(code.co_filename)}:{code.co_firstlineno}"
        qualname = getattr(obj, "__qualname__", code.co_name)
        if code.co_name == "<lambda>":
            return f"lambda at {where}"
        if "<locals>" in qualname:
            return f"local function {qualname} at {where}"
        return f"function {qualname} at {where}"
    if isinstance(obj, io.IOBase):
        return f"open file {getattr(obj, 'name', '?')!r}"
    if isinstance(obj, type) and "<locals>" in obj.__qualname__:
        return f"local class {obj.__qualname__}"
    return f"{type(obj).__qualname__} object"


def _children(obj: Any) -> list[tuple[str, Any]]:
    if isinstance(obj, functools.partial):
        parts = [(".func", obj.func)]
        parts += [(f".args[{i}]", a) for i, a in enumerate(obj.args)]
        return parts + [(f".keywords[{k!r}]", v) for k, v in obj.keywords.items()]
    if isinstance(obj, types.MethodType):
        return [(".__self__", obj.__self__), (".__func__", obj.__func__)]
    if isinstance(obj, dict):
        return [(f"[{k!r}]", v) for k, v in obj.items()]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [(f"[{i}]", v) for i, v in enumerate(obj)]
    if isinstance(obj, types.FunctionType):
        return []  # a function pickles by name: it is the culprit itself
    children = list(vars(obj).items()) if hasattr(obj, "__dict__") else []
    return [(f".{k}", v) for k, v in children]


def unpicklable_part(obj: Any, name: str) -> tuple[str, str] | None:
    """``(path, description)`` of the innermost part of ``obj`` that fails to pickle, or None."""
    if pickles(obj):
        return None
    path, culprit, seen = name, obj, {id(obj)}
    while True:
        for suffix, child in _children(culprit):
            if id(child) not in seen and not pickles(child):
                seen.add(id(child))
                path, culprit = path + suffix, child
                break
        else:
            return path, describe(culprit)
