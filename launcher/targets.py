"""What to run in each worker: a script, a module, or a function.

Parsing is pure string work; ``locate`` finds the source file of a target
without importing it (and so without importing torch or the user's code).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from launcher.errors import TargetError

YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class ScriptTarget:
    """``python train.py``: run as ``__main__`` with torchrun's argv and sys.path."""

    path: str  # absolute
    as_written: str = ""  # sys.argv[0] in the worker, as the user wrote it (torchrun does the same)

    def describe(self) -> str:
        return self.path


@dataclass(frozen=True)
class ModuleTarget:
    """``python -m pkg.train``: run as ``__main__`` like ``runpy.run_module``."""

    module: str

    def describe(self) -> str:
        return f"-m {self.module}"


@dataclass(frozen=True)
class FunctionTarget:
    """``pkg.module:function`` or ``file.py:function``: called as ``fn(ctx, *args, **kwargs)``."""

    function: str
    module: str | None = None
    path: str | None = None  # absolute, when given as file.py:function

    def describe(self) -> str:
        return f"{self.path or self.module}:{self.function}"


Target = ScriptTarget | ModuleTarget | FunctionTarget


def is_yaml(text: str) -> bool:
    return text.lower().endswith(YAML_SUFFIXES)


def _looks_like_path(text: str) -> bool:
    return text.endswith(".py") or "/" in text or os.sep in text


def parse_target(text: str, *, as_module: bool = False, base: Path | None = None) -> Target:
    """Parse a target as written on the command line or in a job file's ``entrypoint``.

    ``base`` is the folder relative paths resolve against (the YAML file's folder,
    or the working directory when None).
    """
    text = text.strip()
    if text.startswith("-m "):
        as_module, text = True, text[3:].strip()
    if not text:
        raise TargetError("no target given", "name a script, -m module, module:function or a .yaml job")
    if as_module:
        if not _is_dotted_name(text):
            raise TargetError(f"-m {text}: not a module name", "write it as a dotted name, e.g. -m pkg.train")
        return ModuleTarget(text)
    head, sep, tail = text.rpartition(":")
    if sep and tail.isidentifier() and head and not (len(head) == 1 and head.isalpha()):
        if _looks_like_path(head):
            return FunctionTarget(function=tail, path=_absolute(head, base))
        if not _is_dotted_name(head):
            raise TargetError(f"{text}: not a module:function", "write it as pkg.module:function or file.py:function")
        return FunctionTarget(function=tail, module=head)
    return ScriptTarget(_absolute(text, base), as_written=text)


def _is_dotted_name(text: str) -> bool:
    return all(part.isidentifier() for part in text.split("."))


def _absolute(path: str, base: Path | None) -> str:
    candidate = Path(path).expanduser()
    if not candidate.is_absolute():
        candidate = (base or Path.cwd()) / candidate
    return os.path.normpath(candidate)


def locate(target: Target, search_path: list[str] | None = None) -> Path:
    """The source file of a target, found without importing anything.

    A dotted module is walked package by package through ``PathFinder``, so a
    package's ``__init__`` (which may import torch) is not executed.
    """
    if isinstance(target, ScriptTarget) or (isinstance(target, FunctionTarget) and target.path):
        path = Path(target.path if isinstance(target, ScriptTarget) else str(target.path))
        if not path.is_file():
            raise TargetError(f"{path}: no such file", "check the path (relative paths start at the working directory)")
        return path
    module = target.module if isinstance(target, ModuleTarget | FunctionTarget) else None
    if module is None:  # pragma: no cover - the dataclasses make this impossible
        raise TargetError("target has no module", "")
    origin = _find_module_file(module, search_path if search_path is not None else [os.getcwd(), *sys.path])
    if origin is None:
        raise TargetError(
            f"{module}: module not found",
            "check the name, install the package, or run from the folder that contains it",
        )
    return origin


def _find_module_file(module: str, search_path: list[str]) -> Path | None:
    paths: list[str] | None = search_path
    spec = None
    parts = module.split(".")
    for index in range(len(parts)):
        name = ".".join(parts[: index + 1])
        if index == 0 and name in sys.builtin_module_names:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, paths)
        if spec is None:
            return None
        paths = list(spec.submodule_search_locations or [])
    if spec is None or spec.origin is None or spec.origin in ("built-in", "frozen"):
        return None
    origin = Path(spec.origin)
    if spec.submodule_search_locations:  # a package: ``-m pkg`` runs pkg/__main__.py
        main = origin.parent / "__main__.py"
        return main if main.is_file() else origin
    return origin


def check_function_defined(source: Path, function: str) -> None:
    """Raise ``TargetError`` unless ``source`` defines ``function`` at top level (read, not imported)."""
    import ast

    try:
        tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
    except SyntaxError as error:
        raise TargetError(
            f"{source}:{error.lineno}: syntax error: {error.msg}", "fix the syntax of the entrypoint file"
        ) from None
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    if function not in names:
        import difflib

        close = difflib.get_close_matches(function, sorted(names), n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"define `def {function}(ctx, ...)` at top level"
        raise TargetError(f"{source}: no top-level function '{function}'", hint)
