"""Spawn-safety checks on live objects, for the worker side (or the torch-preloaded server).

``describe_unpicklable`` walks an object (a dataset's attributes, a collate_fn, a
worker_init_fn, a partial) and names the first thing that cannot be pickled, such as
"lambda at train.py:42"; ``cuda_initialized_before_fork`` says whether a fork now would
inherit an initialised CUDA context. The one-line fixes here are the same ones
``launcher.preflight`` prints for the static checks and for error texts.

Worker side: imports only the standard library and ``launcher.errors``/``schema``/
``platforms``; never imports the launch side, and never imports torch (it only looks
at torch when the user's code has already imported it).
"""

from __future__ import annotations

import functools
import io
import socket
import sys
import threading
import types
from collections.abc import Callable
from pathlib import Path

from launcher.platforms import start_method_pickles

FIX_MAIN_GUARD = (
    'move the code that starts processes under `if __name__ == "__main__":` (or into a function called there)'
)
FIX_PICKLE = (
    "use a function defined at module top level (functools.partial for arguments), not a lambda or local def"
)
FIX_GUARD_DEF = (
    'define it at module top level outside `if __name__ == "__main__":`, or in an importable module'
)
FIX_CUDA_FORK = (
    "do not use CUDA before a fork: use the spawn or forkserver start method, or CUDA only in children"
)
FIX_PORT = "pick another master port, or leave it unset so the launcher chooses a free one"

_ATOMS = (str, bytes, bytearray, int, float, complex, bool, type(None), range, slice)
_LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))
_MAX_ITEMS = 1000  # per container: a dataset's list of a million file names is not walked to the end
_MAX_NODES = 20000  # per call: the walk is a diagnosis, not a serializer


def describe_unpicklable(obj: object, name: str = "object") -> str | None:
    """The first part of ``obj`` that pickle would refuse, named with where it sits, or None.

    Examples: ``"lambda at train.py:42 (dataset.transform.transforms[1])"``,
    ``"local function make.<locals>.f at x.py:7 (collate_fn)"``. Finds lambdas, local
    functions and classes, modules, generators, open files, locks and sockets; objects
    with their own ``__reduce__`` are taken at their word, not walked.
    """
    seen: set[int] = set()
    budget = [_MAX_NODES]
    return _walk(obj, name, seen, budget)


def _walk(obj: object, path: str, seen: set[int], budget: list[int]) -> str | None:
    if isinstance(obj, _ATOMS) or id(obj) in seen or budget[0] <= 0:
        return None
    seen.add(id(obj))
    budget[0] -= 1
    problem = _leaf_problem(obj)
    if problem is not None:
        return f"{problem} ({path})"
    children: list[tuple[str, object]] = []
    if isinstance(obj, types.FunctionType):
        children = [(f"{path}.__defaults__", obj.__defaults__)] if obj.__defaults__ else []
    elif isinstance(obj, types.MethodType):
        children = [(path, obj.__func__), (f"{path}.__self__", obj.__self__)]
    elif isinstance(obj, functools.partial):
        children = [(f"{path}.func", obj.func)]
        children += [(f"{path}.args[{i}]", a) for i, a in enumerate(obj.args)]
        children += [(f"{path}.keywords[{k!r}]", v) for k, v in obj.keywords.items()]
    elif isinstance(obj, dict):
        children = [(f"{path}[{k!r}]", v) for k, v in list(obj.items())[:_MAX_ITEMS]]
    elif isinstance(obj, (list, tuple, set, frozenset)):
        children = [(f"{path}[{i}]", v) for i, v in enumerate(list(obj)[:_MAX_ITEMS])]
    elif isinstance(obj, type) or _has_own_reduce(obj):
        return None
    else:
        state = getattr(obj, "__dict__", None)
        if isinstance(state, dict):
            children = [(f"{path}.{k}", v) for k, v in state.items()]
        for slot in _slots(type(obj)):
            if hasattr(obj, slot):
                children.append((f"{path}.{slot}", getattr(obj, slot)))
    for child_path, child in children:
        found = _walk(child, child_path, seen, budget)
        if found is not None:
            return found
    return None


def _leaf_problem(obj: object) -> str | None:
    """Why ``obj`` itself cannot be pickled, or None."""
    if isinstance(obj, types.FunctionType):
        return _function_problem(obj)
    if isinstance(obj, type):
        qual = getattr(obj, "__qualname__", "")
        return f"local class {qual}" if "<locals>" in qual else None
    local_type = type(obj).__qualname__
    if "<locals>" in local_type and not isinstance(obj, types.MethodType):
        return f"instance of local class {local_type}"
    if isinstance(obj, types.ModuleType):
        return f"module {obj.__name__}"
    if isinstance(obj, (types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType)):
        return f"generator {getattr(obj, '__qualname__', '?')}"
    if isinstance(obj, io.IOBase):
        return f"open file {getattr(obj, 'name', '?')!r}"
    if isinstance(obj, _LOCK_TYPES):
        return "lock"
    if isinstance(obj, socket.socket):
        return "socket"
    return None


def _function_problem(fn: types.FunctionType) -> str | None:
    qual = fn.__qualname__
    code = fn.__code__
    where = f"{Path(code.co_filename).name}:{code.co_firstlineno}"
    if qual == "<lambda>" or qual.endswith(".<lambda>"):
        return f"lambda at {where}"
    if "<locals>" in qual:
        return f"local function {qual} at {where}"
    module = sys.modules.get(fn.__module__)
    target: object = module
    for part in qual.split("."):
        target = getattr(target, part, None)
    if target is not fn:
        return f"function {qual} at {where}, not reachable as {fn.__module__}.{qual}"
    return None


def _has_own_reduce(obj: object) -> bool:
    cls = type(obj)
    return any(
        getattr(cls, name, None) is not getattr(object, name, None)
        for name in ("__reduce_ex__", "__reduce__")
    ) or "__getstate__" in vars(cls)


def _slots(cls: type) -> list[str]:
    names: list[str] = []
    for klass in cls.__mro__:
        slots = vars(klass).get("__slots__", ())
        names.extend([slots] if isinstance(slots, str) else list(slots))
    return [n for n in names if n not in ("__dict__", "__weakref__")]


def spawn_problem(obj: object, name: str, start_method: str) -> str | None:
    """One line naming what in ``obj`` cannot be sent to a process started this way, with the fix."""
    if not start_method_pickles(start_method):
        return None
    found = describe_unpicklable(obj, name)
    if found is None:
        return None
    fix = FIX_GUARD_DEF if "not reachable" in found else FIX_PICKLE
    return f"{found} cannot be pickled for {start_method}; fix: {fix}"


def _torch_cuda_is_initialized() -> bool:
    torch = sys.modules.get("torch")  # never import torch here: no torch, no CUDA
    if torch is None:
        return False
    return bool(torch.cuda.is_initialized())


def cuda_initialized_before_fork(is_initialized: Callable[[], bool] | None = None) -> bool:
    """Whether CUDA is initialised in this process, so a fork now would break CUDA in the child.

    ``is_initialized`` replaces ``torch.cuda.is_initialized`` (tests pass a fake).
    """
    return (is_initialized or _torch_cuda_is_initialized)()


def cuda_fork_problem(start_method: str, is_initialized: Callable[[], bool] | None = None) -> str | None:
    """One line with the fix when processes are about to be forked after CUDA was initialised."""
    if start_method != "fork" or not cuda_initialized_before_fork(is_initialized):
        return None
    return f"CUDA is already initialised and the next processes are forked; fix: {FIX_CUDA_FORK}"
