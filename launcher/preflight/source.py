"""Checks that read the target's source and its local imports: the __main__ guard, pickling, CUDA before fork.

Severity follows what will actually happen: a fail for the start method the code
will really use, a warning for what breaks only under spawn (macOS, Windows). The
facts come from ``scan`` (AST only) over the files ``project`` finds. Never imports
torch or the user's code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from launcher.hints import FIX_CUDA_FORK, FIX_GUARD_DEF, FIX_MAIN_GUARD, FIX_PICKLE
from launcher.platforms import default_mp_start_method, start_method_pickles
from launcher.preflight import facts
from launcher.preflight.files import display, project
from launcher.preflight.findings import Finding, Status, ok
from launcher.preflight.project import ProjectFile


@dataclass(frozen=True)
class _Judge:
    """Which start method each process start will really use."""

    chosen: str  # the launcher's chosen method for its workers
    user_method: str | None  # a literal set_start_method in the project
    platform: str
    default_method: str | None  # the platform default, replaced (``launcher check --as spawn``)

    def resolve(self, method: str) -> str:
        if method == facts.DEFAULT:
            return self.user_method or self.default_method or default_mp_start_method(self.platform)
        if method == facts.LAUNCHER:
            return self.chosen
        return method


def _judge(files: list[ProjectFile], chosen: str, platform: str, default_method: str | None) -> _Judge:
    user = next((f.scan.user_start_method for f in files if f.scan.user_start_method), None)
    return _Judge(chosen, user, platform, default_method)


def _where(file: ProjectFile, line: int) -> str:
    return f"{display(file.path)}:{line}"


# -- AST checks ------------------------------------------------------------------------------------
def check_main_guard(
    source_path: Path,
    start_method: str,
    platform: str,
    default_method: str | None = None,
    cwd: Path | None = None,
) -> list[Finding]:
    """Process starts that run at import time, outside ``if __name__ == "__main__":``.

    The launcher runs a script as ``__main__``; a child started by spawn or forkserver
    re-imports it (and the project modules it imports), so a top-level start there runs
    again in every child: fail. Under fork it works, so it is a portability warning.
    ``start_method`` is the launcher's chosen method (it applies to ``launcher.launch``);
    the user's own processes use their default (``default_method`` replaces the platform's).
    """
    files = project(source_path, cwd)
    judge = _judge(files, start_method, platform, default_method)
    findings: list[Finding] = []
    for file in files:
        for start in file.scan.starts:
            if start.scope != "<module>" or start.guarded:
                continue
            method = judge.resolve(start.method)
            if start.via:
                what = f"{start.via} runs at import, outside the __main__ guard, and starts {start.what}"
                what += f" (line {start.inner_line})"
            else:
                what = f"{start.what} runs at import, outside the __main__ guard"
            maybe = "" if start.certain else " (if num_workers > 0)"
            if start_method_pickles(method):
                status: Status = "fail" if start.certain else "warn"
                message = f"{what}: each {method} child re-runs it{maybe}"
            else:
                status = "warn"
                message = f"{what}: works under fork only, not under spawn (macOS, Windows)"
            findings.append(Finding("main-guard", status, _where(file, start.line), message, FIX_MAIN_GUARD))
    return _worst_per_place(findings) or [ok("main-guard", "no process starts at import time")]


def _worst_per_place(findings: list[Finding]) -> list[Finding]:
    """One finding per file:line, the most severe (a top-level ``main()`` may start several things)."""
    rank = {"fail": 0, "warn": 1, "pass": 2}
    best: dict[str, Finding] = {}
    for f in findings:
        if f.where not in best or rank[f.status] < rank[best[f.where].status]:
            best[f.where] = f
    return list(best.values())


def check_lambdas(
    source_path: Path,
    start_method: str,
    platform: str,
    default_method: str | None = None,
    cwd: Path | None = None,
) -> list[Finding]:
    """Lambdas and local functions that get pickled to another process.

    Fail when the start method that will be used pickles them (spawn, forkserver, or a
    pool task, pickled under any method); warn when they only work because of fork.
    A dataset's functions are charged to the loaders with workers of the whole project.
    """
    files = project(source_path, cwd)
    judge = _judge(files, start_method, platform, default_method)
    loaders = [(judge.resolve(m), c) for f in files for m, c in f.scan.loader_methods]
    findings: list[Finding] = []
    for file in files:
        for item in _one_per_handover(file.scan.shipped):
            if item.method == facts.ALWAYS:
                uses = [("pickle", True)]
            elif item.method == facts.LOADER:
                uses = [(method, certain and item.certain) for method, certain in loaders]
            else:
                uses = [(judge.resolve(item.method), item.certain)]
            if not uses:
                continue  # no DataLoader workers: nothing is pickled
            handover = _where(file, item.line)
            findings.append(_pickle_finding(item, uses, _object_place(item.label, file, handover), handover))
    return _worst_per_place_and_label(findings) or [ok("pickle", "nothing unpicklable is sent to another process")]


_PLACE = re.compile(r" at (\S+):(\d+)")


def _object_place(label: str, file: ProjectFile, handover: str) -> str:
    """Where to report: a lambda where it is written (the fix goes there; its file is this one when
    the label names it by file name alone, as labels of the same file do); a function, named in the
    message, where it is handed over."""
    found = _PLACE.search(label)
    if found is None or not label.startswith("lambda"):
        return handover
    name, line = found.groups()
    return f"{display(file.path) if name == file.path.name else name}:{line}"


def _pickle_finding(item: facts.Shipped, uses: list[tuple[str, bool]], where: str, handover: str) -> Finding:
    role = item.role if handover == where else f"{item.role}, given at {handover}"
    pickling = [(m, c) for m, c in uses if start_method_pickles(m) or m == "pickle"]
    fix = FIX_GUARD_DEF if "__main__ guard" in item.label else FIX_PICKLE
    if pickling:
        method, certain = max(pickling, key=lambda mc: mc[1])
        how = "(a process pool pickles every task)" if method == "pickle" else f"for {method}"
        status: Status = "fail" if certain else "warn"
        maybe = "" if certain else " (if num_workers > 0)"
        message = f"{item.label} ({role}) cannot be pickled {how}{maybe}"
    else:
        status = "warn"
        message = f"{item.label} ({role}) works under fork only; spawn (macOS, Windows) cannot pickle"
    return Finding("pickle", status, where, message, fix)


def _one_per_handover(shipped: tuple[facts.Shipped, ...]) -> list[facts.Shipped]:
    """One item per line, role and method: "lambda at data.py:41 and 3 more" (a Compose of several)."""
    groups: dict[tuple[int, str, str, bool], list[str]] = {}
    for item in shipped:
        groups.setdefault((item.line, item.role, item.method, item.certain), []).append(item.label)
    out = []
    for (line, role, method, certain), labels in groups.items():
        label = labels[0] + (f" and {len(labels) - 1} more" if len(labels) > 1 else "")
        out.append(facts.Shipped(line, label, role, method, certain))
    return out


def _worst_per_place_and_label(findings: list[Finding]) -> list[Finding]:
    """One finding per place and object (a value bound once may be handed over several times)."""
    seen: set[tuple[str, str]] = set()
    out: list[Finding] = []
    for f in findings:
        key = (f.where, f.message.split(" (", 1)[0])
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def check_cuda_fork(
    source_path: Path,
    start_method: str,
    platform: str,
    default_method: str | None = None,
    cwd: Path | None = None,
) -> list[Finding]:
    """CUDA touched earlier in the same code path than a fork.

    PyTorch forbids CUDA only inside forked children: a fail when the child (its target,
    as far as it can be read) uses CUDA; nothing when its code was found and does not; a
    warning when its code could not be read.
    """
    files = project(source_path, cwd)
    judge = _judge(files, start_method, platform, default_method)
    findings: list[Finding] = []
    for file in files:
        found = file.scan
        for start in found.starts:
            if start.what == facts.LOADER_START or judge.resolve(start.method) != "fork":
                continue
            before = [c for c in found.cuda if c.scope == start.scope and c.line < start.line]
            if start.via:
                name = start.via.removesuffix("()")
                before += [c for c in found.cuda if c.scope == name and c.line < start.inner_line]
            if not before:
                continue
            first = min(before, key=lambda c: c.line)
            message = f"CUDA is initialised at line {first.line} ({first.text}) before {start.what} forks"
            if start.child_cuda:
                findings.append(Finding("cuda-fork", "fail", _where(file, start.line),
                                        f"{message}, and the child {start.child_cuda}", FIX_CUDA_FORK))
            elif not start.child_known:
                message += ": safe only while the children never use CUDA"
                findings.append(Finding("cuda-fork", "warn", _where(file, start.line), message, FIX_CUDA_FORK))
    return findings or [ok("cuda-fork", "no fork after CUDA")]
