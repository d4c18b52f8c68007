"""``launcher.launch(fn, nprocs=...)``: the Python API over the same plan and supervisor."""

from __future__ import annotations

import dataclasses
import inspect
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from launcher.calls import CALL_HINT, call_problem
from launcher.errors import TargetError
from launcher.result import JobFailed, RunResult
from launcher.schema import JobConfig, StartMethod
from launcher.targets import FunctionTarget


def function_target(fn: Callable[..., Any]) -> tuple[FunctionTarget, StartMethod | None]:
    """Name ``fn`` so that a worker can import it; a start method when only fork can reach it."""
    name = getattr(fn, "__qualname__", None)
    module = getattr(fn, "__module__", None)
    if not name or not module:
        raise TargetError(f"{fn!r} has no importable name", "pass a function defined with def at module level")
    if "<lambda>" in name or "<locals>" in name:
        code = getattr(fn, "__code__", None)
        where = f" at {os.path.basename(code.co_filename)}:{code.co_firstlineno}" if code else ""
        kind = "lambda" if "<lambda>" in name else f"local function {name}"
        raise TargetError(f"launch: {kind}{where} cannot be imported by the workers",
                          "define the function with def at the top level of a module")
    if module == "__main__" and not hasattr(sys.modules["__main__"], "__file__"):
        if sys.platform.startswith("linux"):
            return FunctionTarget(function=name, module="__main__"), "fork"
        raise TargetError(f"launch: {name} is defined interactively, and workers on {sys.platform} cannot import it",
                          "move the function into a .py module and import it from there")
    return FunctionTarget(function=name, module=module), None


def _check_call(fn: Callable[..., Any], name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
    """Raise TargetError, before anything starts, when ``fn`` cannot take these arguments."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # no signature to read (a C function): the call itself will say
    problem = call_problem(name, signature, args, kwargs)
    if problem is not None:
        raise TargetError(problem, CALL_HINT)


def launch(
    fn: Callable[..., Any],
    *,
    nprocs: int | None = None,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    config: JobConfig | None = None,
) -> RunResult:
    """Run ``fn(ctx, *args, **kwargs)`` on every rank (``fn(*args, **kwargs)`` when its first parameter cannot
    take the context: ``launcher.calls``); raise ``JobFailed`` if a rank fails."""
    from launcher.clusters import detect
    from launcher.config.validate import check_job
    from launcher.hostinfo import host_facts
    from launcher.plan.build import build_plan, rendezvous_host
    from launcher.supervise.run import run_plan

    config = config or JobConfig()
    target, forced_method = function_target(fn)
    _check_call(fn, target.describe(), args, kwargs or {})
    world = config.world
    if nprocs is not None:
        world = dataclasses.replace(world, nprocs=nprocs)
    if forced_method is not None and world.start_method in ("auto", "forkserver", "spawn"):
        world = dataclasses.replace(world, start_method=forced_method)
    config = dataclasses.replace(config, world=world, kwargs=dict(kwargs or {}))
    check_job(config)
    facts = host_facts(os.environ, rendezvous_host(config), config.world.local_addr)
    plan = build_plan(config, target, tuple(args), detect(os.environ), facts)
    result = run_plan(plan)
    if not result.ok:
        raise JobFailed(result)
    return result
