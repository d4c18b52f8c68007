"""The files of the user's project that a target imports, found by path, never by importing them.

From the target, ``import x``, ``from x import y`` and relative imports are followed to
source files under the project's roots (the target's folder, the folder above its
package, the working directory), never into site-packages, and within bounds: depth,
number of files, time. Never imports torch or the user's code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from launcher.preflight.facts import NOTHING_IMPORTED, Imported, ImportRef, ProcessStart, Scan

MAX_DEPTH = 3  # the target is depth 0; its local imports 1; theirs 2; ...
MAX_FILES = 30
BUDGET_S = 0.3  # for the whole walk: a preflight must stay quick
_INSTALLED = ("site-packages", "dist-packages")


@dataclass(frozen=True)
class ProjectFile:
    path: Path
    scan: Scan
    depth: int  # 0 for the target


def project_files(target: Path, cwd: Path, scanned: Callable[[Path, Imported], Scan]) -> list[ProjectFile]:
    """The target and the project files it imports (breadth first); a file that imports what
    another exports (a Process subclass, a function returning lambdas) is read again knowing it.

    ``scanned`` reads a file (it may raise OSError or SyntaxError: such an import is skipped).
    """
    deadline = time.monotonic() + BUDGET_S
    roots = _roots(target, cwd)
    out = [ProjectFile(target, scanned(target, NOTHING_IMPORTED), 0)]
    seen = {target.resolve()}
    queue = [out[0]]
    while queue and len(out) < MAX_FILES and time.monotonic() < deadline:
        current = queue.pop(0)
        if current.depth >= MAX_DEPTH:
            continue
        for ref in current.scan.imports:
            for path in module_files(ref, current.path, roots):
                key = path.resolve()
                if key in seen or len(out) >= MAX_FILES:
                    continue
                seen.add(key)
                try:
                    found = ProjectFile(path, scanned(path, NOTHING_IMPORTED), current.depth + 1)
                except (OSError, SyntaxError, ValueError):
                    continue
                out.append(found)
                queue.append(found)
    options = frozenset[str]().union(*(f.scan.positive_options for f in out))
    latest = {f.path.resolve(): f for f in out}
    for file in reversed(out):  # the deepest first: an importer then sees what its imports export
        key = file.path.resolve()
        latest[key] = _with_imports(latest[key], {k: f.scan for k, f in latest.items()}, roots, scanned, options)
    return [latest[f.path.resolve()] for f in out]


def _with_imports(
    file: ProjectFile,
    by_path: dict[Path, Scan],
    roots: list[Path],
    scanned: Callable[[Path, Imported], Scan],
    options: frozenset[str],
) -> ProjectFile:
    """The file read again knowing the exports of the project files it imports, and the project's
    argparse options whose default is above zero."""
    process: list[tuple[str, str, str]] = []
    returns: list[tuple[str, tuple[str, ...]]] = []
    datasets: set[str] = set()
    starters: list[tuple[str, ProcessStart]] = []
    loaders: list[tuple[str, str, bool]] = []
    for ref in file.scan.imports:
        module = module_file(ref, file.path, roots)
        found = by_path.get(module.resolve()) if module is not None else None
        if found is None:
            continue
        prefix = "." * ref.level + (f"{ref.module}." if ref.module else "")
        exported_processes = {name: (method, child) for name, method, child in found.process_classes}
        exported_returns = dict(found.returns_held)
        exported_starters = dict(found.starters)
        names = ref.names or (*exported_processes, *exported_returns, *found.dataset_classes, *exported_starters)
        for name in names:
            starters += [(prefix + k, s) for k, s in exported_starters.items() if k.split(".")[0] == name]
            loaders += [(prefix + k, m, c) for k, m, c in found.returns_loader if k.split(".")[0] == name]
            if name in exported_processes:
                process.append((prefix + name, *exported_processes[name]))
            if name in exported_returns:
                returns.append((prefix + name, exported_returns[name]))
            if name in found.dataset_classes:
                datasets.add(prefix + name)
    options = options if file.scan.unsure_workers else frozenset()
    imported = Imported(tuple(process), tuple(returns), frozenset(datasets), tuple(starters), tuple(loaders), options)
    if not imported:
        return file
    try:
        return ProjectFile(file.path, scanned(file.path, imported), file.depth)
    except (OSError, SyntaxError, ValueError):
        return file


def _roots(target: Path, cwd: Path) -> list[Path]:
    """Where absolute imports of project modules resolve: as ``python target`` (or ``-m``) would."""
    folder = target.parent
    top = folder
    while (top / "__init__.py").is_file() and top.parent != top:
        top = top.parent
    roots: list[Path] = []
    for root in (folder, top, cwd):
        if root not in roots and not _installed(root):
            roots.append(root)
    return roots


def _installed(path: Path) -> bool:
    return any(part in _INSTALLED for part in path.parts)


def module_file(ref: ImportRef, importer: Path, roots: list[Path]) -> Path | None:
    """The project source file of the module an import statement names (not its submodules)."""
    parts = [p for p in ref.module.split(".") if p]
    for base in _bases(ref, importer, roots):
        found = _source(base, parts)
        if found is not None:
            return None if _installed(found) else found
    return None


def _bases(ref: ImportRef, importer: Path, roots: list[Path]) -> list[Path]:
    if not ref.level:
        return roots
    base = importer.parent
    for _ in range(ref.level - 1):
        base = base.parent
    return [base]


def module_files(ref: ImportRef, importer: Path, roots: list[Path]) -> list[Path]:
    """The project's source files that an import statement names (its module, and submodules
    named in ``from pkg import mod``); none for modules outside the project."""
    parts = [p for p in ref.module.split(".") if p]
    for base in _bases(ref, importer, roots):
        found = [f for f in [_source(base, parts), *(_source(base, [*parts, n]) for n in ref.names)] if f]
        if found:
            return [f for f in found if not _installed(f)]
    return []


def _source(base: Path, parts: list[str]) -> Path | None:
    if not parts or not all(p.isidentifier() for p in parts):
        return None
    module = base.joinpath(*parts)
    for candidate in (module.with_name(module.name + ".py"), module / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None
