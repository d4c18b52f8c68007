"""The ``target`` check: the script, module or function to run exists and parses.

Modules are located without executing any package ``__init__``. Never imports torch or the user's code.
"""

from __future__ import annotations

import difflib
import importlib.machinery
import importlib.util
import sys
from pathlib import Path

from launcher.preflight import facts
from launcher.preflight.files import display, scanned
from launcher.preflight.findings import Finding, ok


def check_target(
    script: Path | None, module: str | None, function: str | None, cwd: Path
) -> tuple[Finding, Path | None]:
    """Whether the target exists, and the source file to scan (None when there is none to read).

    Modules are located without running any package ``__init__``: the top-level package
    by ``importlib.util.find_spec`` (which imports nothing for a top-level name), each
    submodule by ``PathFinder`` over its parent's ``__path__`` as read from the spec.
    Packages that rewrite ``__path__`` at import time are therefore not followed.
    """
    if script is not None:
        path = script if script.is_absolute() else cwd / script
        if path.is_dir():  # run as ``python DIR`` would: its __main__.py
            if not (path / "__main__.py").is_file():
                return Finding("target", "fail", "", f"{script}: is a directory, with no __main__.py to run",
                               f"name the script in it (e.g. {script}/train.py), or add {script}/__main__.py"), None
            path = path / "__main__.py"
        if not path.is_file():
            return Finding(
                "target", "fail", "", f"{script}: no such file", f"check the path (from {cwd})"
            ), None
        label = display(path)
    elif module is not None:
        found = _locate_module(module, function is None, cwd)
        if isinstance(found, Finding):
            return found, None
        if found is None:
            return ok("target", f"module {module} found (not Python source: not scanned)"), None
        path, label = found, f"module {module}"
    else:
        return Finding("target", "fail", "", "no script or module to run", "name a script or -m module"), None
    try:
        read = scanned(path)
    except SyntaxError as e:
        where = f"{display(path)}:{e.lineno or 0}"
        return Finding("target", "fail", where, f"SyntaxError: {e.msg}", "fix the syntax error"), None
    except OSError as e:
        return Finding(
            "target", "fail", "", f"{label}: cannot read ({e.strerror})", "check permissions"
        ), None
    if function is not None:
        problem = _function_problem(function, read, display(path))
        if problem is not None:
            return problem, path
        label += f", function {function}"
    return ok("target", f"{label} found", display(path)), path


def _locate_module(module: str, run_as_main: bool, cwd: Path) -> Path | Finding | None:
    """The module's source file, a failing Finding, or None for a module with no Python source."""
    parts = module.split(".")
    if not all(p.isidentifier() for p in parts):
        return Finding(
            "target", "fail", "", f"{module!r} is not a module name", "use a dotted name: pkg.train"
        )
    search = [str(cwd), *sys.path]
    try:
        spec = importlib.machinery.PathFinder.find_spec(parts[0], search) or importlib.util.find_spec(
            parts[0]
        )
    except (ImportError, ValueError):
        spec = None
    hint = "check the name, and that its folder is the working directory or on PYTHONPATH"
    if spec is None:
        return Finding("target", "fail", "", f"no module named {parts[0]!r}", hint)
    for depth in range(2, len(parts) + 1):
        name = ".".join(parts[:depth])
        spec = importlib.machinery.PathFinder.find_spec(name, list(spec.submodule_search_locations or []))
        if spec is None:
            return Finding("target", "fail", "", f"no module named {name!r}", hint)
    if spec.submodule_search_locations is not None and run_as_main:
        main = importlib.machinery.PathFinder.find_spec(
            f"{module}.__main__", list(spec.submodule_search_locations)
        )
        if main is None:
            return Finding(
                "target", "fail", "", f"{module} is a package with no __main__.py", f"run {module}.<module>"
            )
        spec = main
    origin = spec.origin
    if origin is None or not origin.endswith(".py"):
        return None
    return Path(origin)


def _function_problem(function: str, found: facts.Scan, where: str) -> Finding | None:
    head = function.split(".")[0]
    if head in found.module_names or "__getattr__" in found.module_names:
        return None
    if head in found.guard_names:
        message = f"{head} is defined only under the __main__ guard: importing the file does not define it"
        return Finding("target", "fail", where, message, "define it at module top level")
    close = difflib.get_close_matches(head, sorted(found.module_names), n=1)
    hint = f"did you mean {close[0]!r}?" if close else "define it at module top level"
    return Finding("target", "fail", where, f"{head} is not defined at module top level", hint)
