"""What to run in each worker: a script, a module, or a function.

Parsing is pure string work; ``locate`` finds the source file of a target
without importing it (and so without importing torch or the user's code).
"""

from __future__ import annotations

import os
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
    """``pkg.module:function`` or ``file.py:function``: called as ``fn(ctx, *args, **kwargs)`` (``launcher.calls``)."""

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
