"""Static preflight: judge a launch before anything starts, in well under a second.

Each check is a pure function of explicit inputs and returns ``Finding``s; severity
follows what will actually happen with the start method the code will really use
(fail), and what would break only elsewhere, e.g. under spawn on macOS/Windows (warn).
``run_static_checks`` runs them all from one ``StaticInputs``; ``render_table`` prints
them for ``launcher check``; ``known_error_hints`` maps error texts that slipped
through to the same one-line fixes.

Never imports torch or the user's code: the AST checks live in ``spawnscan``, targets
are located with import machinery that does not execute packages (see ``check_target``).
Checks on live objects (picklability of a dataset built in code) live in
``launcher.runtime.spawncheck``.
"""

from __future__ import annotations

import difflib
import errno
import importlib.machinery
import importlib.util
import os
import re
import socket
import sys
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from launcher import spawnscan
from launcher.errors import PreflightError, UsageError
from launcher.platforms import default_mp_start_method, start_method_pickles
from launcher.runtime.spawncheck import FIX_CUDA_FORK, FIX_GUARD_DEF, FIX_MAIN_GUARD, FIX_PICKLE, FIX_PORT

CHECKS = ("target", "main-guard", "pickle", "cuda-fork", "gpus", "port", "paths", "threads")
Status = Literal["pass", "warn", "fail"]


@dataclass(frozen=True)
class Finding:
    check: str  # one of CHECKS
    status: Status
    where: str  # "train.py:12" or ""
    message: str  # one line: what is wrong (or what was checked)
    fix: str  # one line: what to change ("" when nothing to change)


@dataclass(frozen=True)
class StaticInputs:
    """Exactly the facts the static checks need; built by the core from the launch plan."""

    platform: str  # "linux" | "darwin" | "win32"
    start_method: str  # the launcher's chosen worker start method (StartMethodChoice.method)
    backend: str  # resolved: "nccl" | "gloo"
    nprocs: int  # processes on this node
    usable_cpus: int
    cwd: Path  # where the launcher runs; relative target paths resolve here
    script: Path | None = None  # the target as a script path, as typed...
    module: str | None = None  # ...or as a module ("pkg.train")
    function: str | None = None  # "main" of "pkg.train:main"
    visible_gpus: int = 0
    cuda_visible_devices: str | None = None  # the value the workers will see, if set
    master_host: str | None = None
    master_port: int | None = None  # only a port the user gave
    paths: Mapping[str, str] = field(default_factory=dict)  # "data.root" -> "data/train"
    writable: frozenset[str] = frozenset()  # keys of ``paths`` the job writes (logs, checkpoints)
    job_dir: Path | None = None  # the workers' working directory when it is not ``cwd``
    omp_num_threads: str | None = None  # only a value the user set
    skip: frozenset[str] = frozenset()  # check names from --skip-check


def _ok(check: str, message: str, where: str = "") -> Finding:
    return Finding(check, "pass", where, message, "")


def _display(path: Path) -> str:
    if path.is_absolute():
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)
    return str(path)


_SCANS: dict[tuple[str, int, int, str], spawnscan.Scan] = {}


def _scan(path: Path) -> spawnscan.Scan:
    """The file's scan, cached by path, mtime and size (several checks read one file)."""
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size, _display(path))
    if key not in _SCANS:
        _SCANS[key] = spawnscan.scan_file(path, key[3])
    return _SCANS[key]


def _resolve(method: str, chosen: str, scan: spawnscan.Scan, platform: str) -> str:
    if method == spawnscan.DEFAULT:
        return scan.user_start_method or default_mp_start_method(platform)
    if method == spawnscan.LAUNCHER:
        return chosen
    return method


# -- AST checks ------------------------------------------------------------------------------------
def check_main_guard(source_path: Path, start_method: str, platform: str) -> list[Finding]:
    """Process starts that run at import time, outside ``if __name__ == "__main__":``.

    The launcher runs a script as ``__main__``; a child started by spawn or forkserver
    re-imports it, so a top-level start there runs again in every child: fail. Under fork
    it works, so it is a portability warning. ``start_method`` is the launcher's chosen
    method (it applies to ``launcher.launch``); the user's own processes use their default.
    """
    scan = _scan(source_path)
    findings: list[Finding] = []
    for start in scan.starts:
        if start.scope != "<module>" or start.guarded:
            continue
        method = _resolve(start.method, start_method, scan, platform)
        where = f"{_display(source_path)}:{start.line}"
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
        findings.append(Finding("main-guard", status, where, message, FIX_MAIN_GUARD))
    return _worst_per_place(findings) or [_ok("main-guard", "no process starts at import time")]


def _worst_per_place(findings: list[Finding]) -> list[Finding]:
    """One finding per file:line, the most severe (a top-level ``main()`` may start several things)."""
    rank = {"fail": 0, "warn": 1, "pass": 2}
    best: dict[str, Finding] = {}
    for f in findings:
        if f.where not in best or rank[f.status] < rank[best[f.where].status]:
            best[f.where] = f
    return list(best.values())


def check_lambdas(source_path: Path, start_method: str, platform: str) -> list[Finding]:
    """Lambdas and local functions that get pickled to another process.

    Fail when the start method that will be used pickles them (spawn, forkserver, or a
    pool task, pickled under any method); warn when they only work because of fork.
    """
    scan = _scan(source_path)
    loaders = [(_resolve(m, start_method, scan, platform), c) for m, c in scan.loader_methods]
    findings: list[Finding] = []
    for item in scan.shipped:
        if item.method == spawnscan.ALWAYS:
            uses = [("pickle", True)]
        elif item.method == spawnscan.LOADER:
            uses = loaders
        else:
            uses = [(_resolve(item.method, start_method, scan, platform), item.certain)]
        if not uses:
            continue  # no DataLoader workers: nothing is pickled
        pickling = [(m, c) for m, c in uses if start_method_pickles(m) or m == "pickle"]
        where = f"{_display(source_path)}:{item.line}"
        fix = FIX_GUARD_DEF if "__main__ guard" in item.label else FIX_PICKLE
        if pickling:
            method, certain = max(pickling, key=lambda mc: mc[1])
            how = "(a process pool pickles every task)" if method == "pickle" else f"for {method}"
            status: Status = "fail" if certain else "warn"
            maybe = "" if certain else " (if num_workers > 0)"
            message = f"{item.label} ({item.role}) cannot be pickled {how}{maybe}"
        else:
            status = "warn"
            message = (
                f"{item.label} ({item.role}) works under fork only; spawn (macOS, Windows) cannot pickle"
            )
        findings.append(Finding("pickle", status, where, message, fix))
    return findings or [_ok("pickle", "nothing unpicklable is sent to another process")]


def check_cuda_fork(source_path: Path, start_method: str, platform: str) -> list[Finding]:
    """CUDA touched earlier in the same code path than a fork of processes that may use it."""
    scan = _scan(source_path)
    findings: list[Finding] = []
    for start in scan.starts:
        if (
            start.what == spawnscan.LOADER_START
            or _resolve(start.method, start_method, scan, platform) != "fork"
        ):
            continue
        before = [c for c in scan.cuda if c.scope == start.scope and c.line < start.line]
        if start.via:
            name = start.via.removesuffix("()")
            before += [c for c in scan.cuda if c.scope == name and c.line < start.inner_line]
        if before:
            first = min(before, key=lambda c: c.line)
            message = f"CUDA is initialised at line {first.line} ({first.text}) before {start.what} forks"
            where = f"{_display(source_path)}:{start.line}"
            findings.append(Finding("cuda-fork", "fail", where, message, FIX_CUDA_FORK))
    return findings or [_ok("cuda-fork", "no fork after CUDA")]


# -- target ----------------------------------------------------------------------------------------
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
        if path.is_dir():
            path = path / "__main__.py"
        if not path.is_file():
            return Finding(
                "target", "fail", "", f"{script}: no such file", f"check the path (from {cwd})"
            ), None
        label = str(script)
    elif module is not None:
        found = _locate_module(module, function is None, cwd)
        if isinstance(found, Finding):
            return found, None
        if found is None:
            return _ok("target", f"module {module} found (not Python source: not scanned)"), None
        path, label = found, f"module {module}"
    else:
        return Finding("target", "fail", "", "no script or module to run", "name a script or -m module"), None
    try:
        scan = _scan(path)
    except SyntaxError as e:
        where = f"{_display(path)}:{e.lineno or 0}"
        return Finding("target", "fail", where, f"SyntaxError: {e.msg}", "fix the syntax error"), None
    except OSError as e:
        return Finding(
            "target", "fail", "", f"{label}: cannot read ({e.strerror})", "check permissions"
        ), None
    if function is not None:
        problem = _function_problem(function, scan, _display(path))
        if problem is not None:
            return problem, path
        label += f", function {function}"
    return _ok("target", f"{label} found", _display(path)), path


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


def _function_problem(function: str, scan: spawnscan.Scan, where: str) -> Finding | None:
    head = function.split(".")[0]
    if head in scan.module_names or "__getattr__" in scan.module_names:
        return None
    if head in scan.guard_names:
        message = f"{head} is defined only under the __main__ guard: importing the file does not define it"
        return Finding("target", "fail", where, message, "define it at module top level")
    close = difflib.get_close_matches(head, sorted(scan.module_names), n=1)
    hint = f"did you mean {close[0]!r}?" if close else "define it at module top level"
    return Finding("target", "fail", where, f"{head} is not defined at module top level", hint)


# -- host checks -----------------------------------------------------------------------------------
def check_port(host: str, port: int | None, platform: str | None = None) -> Finding:
    """A user-given master port already taken on ``host`` (a bind test there; never a connect)."""
    if port is None:
        return _ok("port", "no master port given: a free one is chosen at launch")
    if not 0 < port < 65536:
        return Finding("port", "fail", "", f"master port {port} is out of range", "use a port in 1024..65535")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as e:
        return Finding(
            "port", "fail", "", f"master address {host!r} does not resolve ({e})", "fix master_addr"
        )
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        if (platform or sys.platform) != "win32":
            # Like the TCPStore: a port in TIME_WAIT from the last run is free, a listener is not.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as e:
            if e.errno == errno.EADDRINUSE or getattr(e, "winerror", None) == 10048:
                return Finding(
                    "port", "fail", "", f"master port {port} is already in use on {host}", FIX_PORT
                )
            if e.errno == errno.EADDRNOTAVAIL:
                return _ok("port", f"{host} is not this machine: port {port} is checked there")
            return Finding("port", "warn", "", f"cannot test port {port} on {host}: {e.strerror}", FIX_PORT)
    return _ok("port", f"master port {port} is free on {host}")


def check_paths(
    paths: Mapping[str, str], cwd: Path, job_dir: Path | None, *, writable: Collection[str] = ()
) -> list[Finding]:
    """Paths the workers will resolve elsewhere, or cannot read (or write, for keys in ``writable``).

    Relative paths resolve against ``job_dir`` when the workers run there, else ``cwd``. A
    missing input is only a warning: the job may create or download it.
    """
    base = job_dir or cwd
    findings: list[Finding] = []
    for key, raw in paths.items():
        path = Path(raw).expanduser()
        target = path if path.is_absolute() else base / path
        writes = key in writable
        moved = not path.is_absolute() and job_dir is not None and job_dir != cwd
        if moved and (cwd / path).exists() and not target.exists():
            message = f"{key}: {raw} exists under {cwd} but the workers run in {job_dir}"
            findings.append(Finding("paths", "fail", "", message, f"use the absolute path {cwd / path}"))
            continue
        if writes:
            existing = next((p for p in (target, *target.parents) if p.exists()), None)
            if existing is None or not os.access(existing, os.W_OK):
                findings.append(
                    Finding(
                        "paths",
                        "fail",
                        "",
                        f"{key}: {target} is not writable",
                        "choose a folder you can write",
                    )
                )
        elif not target.exists():
            findings.append(
                Finding(
                    "paths",
                    "warn",
                    "",
                    f"{key}: {target} does not exist",
                    "check the path (or create it first)",
                )
            )
        elif not os.access(target, os.R_OK):
            findings.append(
                Finding("paths", "fail", "", f"{key}: {target} is not readable", "fix its permissions")
            )
    return findings or [_ok("paths", f"{len(paths)} path(s) resolve where the workers run")]


def check_gpus(backend: str, nprocs: int, visible_gpus: int, cuda_visible_devices: str | None) -> Finding:
    """NCCL needs one GPU per local process; CUDA_VISIBLE_DEVICES must agree with nprocs.

    ``visible_gpus`` is the host's GPU count (0 when unknown or none). As CUDA does, the
    list is cut at its first index that does not exist ("-1" hides every GPU).
    """
    usable, ignored = visible_gpus, ""
    cvd = cuda_visible_devices
    if cvd is not None:
        entries = [e.strip() for e in cvd.split(",") if e.strip()]
        usable = 0
        for entry in entries:
            index = int(entry) if entry.lstrip("-").isdigit() else None  # UUIDs and MIG names count
            if index is not None and (index < 0 or 0 < visible_gpus <= index):
                ignored = entry
                break
            usable += 1
        if backend == "nccl" and len(set(entries[:usable])) != usable:
            message = f"CUDA_VISIBLE_DEVICES={cvd} names a GPU twice: NCCL rejects duplicate GPUs"
            return Finding("gpus", "fail", "", message, "list each GPU once")
    if backend == "nccl":
        if usable == 0:
            message = "backend nccl needs CUDA GPUs and none is visible"
            return Finding("gpus", "fail", "", message, "use backend: gloo")
        if nprocs > usable:
            message = f"{nprocs} nccl processes but {usable} visible GPU(s): NCCL needs one GPU per process"
            return Finding("gpus", "fail", "", message, f"use --nprocs {usable} or backend: gloo")
    if ignored and ignored != "-1":
        message = (
            f"CUDA_VISIBLE_DEVICES={cvd}: GPU {ignored} does not exist here; CUDA ignores it and what follows"
        )
        return Finding("gpus", "warn", "", message, f"use indices 0..{visible_gpus - 1}")
    if cvd is not None and 0 < usable < nprocs:
        message = f"CUDA_VISIBLE_DEVICES={cvd} gives {usable} GPU(s) to {nprocs} processes"
        return Finding("gpus", "warn", "", message, f"list {nprocs} GPUs or use --nprocs {usable}")
    return _ok("gpus", f"{backend}: {nprocs} process(es), {usable} GPU(s) visible")


def check_threads(user_omp_num_threads: str | None, local_procs: int, usable_cpus: int) -> Finding:
    """Oversubscription from an OMP_NUM_THREADS the user set (the launcher's own default is safe)."""
    if user_omp_num_threads is None:
        return _ok("threads", "OMP_NUM_THREADS is chosen by the launcher")
    first = user_omp_num_threads.split(",")[0].strip()
    if not first.isdigit() or int(first) < 1:
        message = f"OMP_NUM_THREADS={user_omp_num_threads!r} is not a positive integer"
        return Finding("threads", "warn", "", message, "set OMP_NUM_THREADS to a number such as 1")
    total = int(first) * local_procs
    if total > usable_cpus:
        fair = max(1, usable_cpus // max(1, local_procs))
        message = f"OMP_NUM_THREADS={first} x {local_procs} processes = {total} threads on {usable_cpus} CPUs"
        return Finding("threads", "warn", "", message, f"set OMP_NUM_THREADS={fair} (or unset it)")
    return _ok("threads", f"{total} threads on {usable_cpus} CPUs")


# -- running and printing --------------------------------------------------------------------------
def validate_skip(names: Iterable[str]) -> frozenset[str]:
    """``--skip-check`` values, checked against ``CHECKS`` (a typo is a UsageError, not a silent no-op)."""
    out = set()
    for name in names:
        if name not in CHECKS:
            close = difflib.get_close_matches(name, CHECKS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "checks: " + ", ".join(CHECKS)
            raise UsageError(f"--skip-check: unknown check {name!r}", hint)
        out.add(name)
    return frozenset(out)


def run_static_checks(inputs: StaticInputs) -> list[Finding]:
    """Every static check, in table order, minus the skipped ones. Never imports the target."""
    skip = inputs.skip
    findings: list[Finding] = []
    target, source = check_target(inputs.script, inputs.module, inputs.function, inputs.cwd)
    if "target" not in skip:
        findings.append(target)
    if source is not None:
        for name, check in (
            ("main-guard", check_main_guard),
            ("pickle", check_lambdas),
            ("cuda-fork", check_cuda_fork),
        ):
            if name not in skip:
                findings += check(source, inputs.start_method, inputs.platform)
    if "gpus" not in skip:
        findings.append(
            check_gpus(inputs.backend, inputs.nprocs, inputs.visible_gpus, inputs.cuda_visible_devices)
        )
    if "port" not in skip:
        findings.append(check_port(inputs.master_host or "127.0.0.1", inputs.master_port, inputs.platform))
    if "paths" not in skip:
        findings += check_paths(inputs.paths, inputs.cwd, inputs.job_dir, writable=inputs.writable)
    if "threads" not in skip:
        findings.append(check_threads(inputs.omp_num_threads, inputs.nprocs, inputs.usable_cpus))
    return findings


def failures(findings: Sequence[Finding]) -> list[Finding]:
    return [f for f in findings if f.status == "fail"]


def preflight_error(findings: Sequence[Finding]) -> PreflightError | None:
    """The error that stops a launch (first failure, its fix as the hint), or None."""
    failed = failures(findings)
    if not failed:
        return None
    first = failed[0]
    where = f"{first.where}: " if first.where else ""
    more = f" (+{len(failed) - 1} more: run `launcher check`)" if len(failed) > 1 else ""
    return PreflightError(f"{first.check}: {where}{first.message}{more}", first.fix)


def render_table(findings: Sequence[Finding]) -> str:
    """The ``launcher check`` table: check, status, file:line, what is wrong and the one-line fix."""
    head = ("check", "status", "where", "finding")
    rows = [(f.check, f.status.upper(), f.where or "-", f.message) for f in findings]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(3)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head[:3], widths, strict=True)) + "  " + head[3]]
    for f, row in zip(findings, rows, strict=True):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)) + "  " + row[3])
        if f.fix:
            lines.append(" " * (sum(widths) + 6) + "fix: " + f.fix)
    counts = {s: sum(f.status == s for f in findings) for s in ("fail", "warn", "pass")}
    lines.append(f"{counts['fail']} failed, {counts['warn']} warning(s), {counts['pass']} passed")
    return "\n".join(lines)


_HINTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"before the\s+current process has finished its\s+bootstrapping phase", re.S),
        FIX_MAIN_GUARD,
    ),
    (re.compile(r"Cannot re-initialize CUDA in forked subprocess"), FIX_CUDA_FORK),
    (re.compile(r"Can't get attribute '[^']+' on <module '__(mp_)?main__'"), FIX_GUARD_DEF),
    (re.compile(r"Can't (pickle|get local object)|pickle local object"), FIX_PICKLE),
    (re.compile(r"address already in use|EADDRINUSE|Errno 98|WinError 10048", re.I), FIX_PORT),
)


def known_error_hints(text: str) -> str | None:
    """The one-line fix for a known multiprocessing/port error found in ``text``, or None."""
    for pattern, fix in _HINTS:
        if pattern.search(text):
            return fix
    return None
