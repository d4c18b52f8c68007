"""The user's source files as the checks read them: each file scanned once (cached by its stat), the
project a target imports (cached while its files are unchanged), and paths as the table shows them.

Never imports torch or the user's code.
"""

from __future__ import annotations

from pathlib import Path

from launcher.preflight import facts
from launcher.preflight.project import ProjectFile, project_files
from launcher.preflight.scan import scan_file


def display(path: Path) -> str:
    if path.is_absolute():
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)
    return str(path)


SCANNED: dict[tuple[str, int, int, str, facts.Imported], facts.Scan] = {}


def scanned(path: Path, imported: facts.Imported = facts.NOTHING_IMPORTED) -> facts.Scan:
    """The file's scan, cached by path, mtime, size and what it imports (several checks read one file)."""
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size, display(path), imported)
    if key not in SCANNED:
        SCANNED[key] = scan_file(path, key[3], imported)
    return SCANNED[key]


PROJECTS: dict[tuple[Path, Path], tuple[tuple[tuple[int, int], ...], list[ProjectFile]]] = {}


def project(source_path: Path, cwd: Path | None) -> list[ProjectFile]:
    """The target and the project files it imports (found from ``cwd`` too), each scanned once;
    kept while none of its files changed (the three source checks read the same project)."""
    key = (source_path, cwd or Path.cwd())
    if key in PROJECTS:
        stamps, files = PROJECTS[key]
        if _stamps(files) == stamps:
            return files
    files = project_files(source_path, key[1], scanned)
    PROJECTS[key] = (_stamps(files), files)
    return files


def _stamps(files: list[ProjectFile]) -> tuple[tuple[int, int], ...]:
    try:
        return tuple((s.st_mtime_ns, s.st_size) for s in (f.path.stat() for f in files))
    except OSError:
        return ()
