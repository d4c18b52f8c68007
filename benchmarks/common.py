"""Shared benchmark machinery: timed jobs, interleaved runs, medians, tables and JSON.

Every job is started with a unique tag in its environment (``launcher.testing.processes``,
as the tests do); every process it starts inherits it (even those re-parented to
init), so "the job is gone" means no live process carries the tag. Nothing here
imports torch.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import psutil

from launcher.testing import processes

BENCH_DIR = Path(__file__).resolve().parent
JOBS_DIR = BENCH_DIR / "jobs"
RESULTS_DIR = BENCH_DIR / "results"
PYTHON = sys.executable
LAUNCHER = (PYTHON, "-m", "launcher")
TORCHRUN = (PYTHON, "-m", "torch.distributed.run")
MIB = 1024 * 1024
T = TypeVar("T")


class JobError(RuntimeError):
    """A benchmarked command did not behave as the benchmark expects."""


# ---------------------------------------------------------------- process tree


def wait_until_gone(tag: str, timeout: float, poll: float = 0.002) -> float:
    """``time.time()`` when the last process carrying ``tag`` was seen gone; JobError after ``timeout`` s.

    A benchmark figure is only valid once the whole job is gone: a leftover is an error here, not a
    finding (``launcher.testing.processes.wait_until_gone`` returns the leftovers instead).
    """
    gone_at, left = processes.wait_until_gone(tag, timeout, poll)
    if left:
        raise JobError(f"{len(left)} job process(es) still alive after {timeout:.0f} s: {[p.pid for p in left]}")
    return gone_at


class ProcMemory(NamedTuple):
    pid: int
    role: str
    pss: int  # bytes; shared pages divided among every process mapping them, in the job or not
    uss: int  # bytes private to the process
    rss: int


def tree_memory(root: psutil.Process) -> list[ProcMemory]:
    """Memory of ``root`` and all its descendants; processes that vanish are skipped."""
    rows: list[ProcMemory] = []
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return rows
    for proc in procs:
        try:
            info = proc.memory_full_info()
            rows.append(ProcMemory(proc.pid, _role(proc, root), info.pss, info.uss, info.rss))
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return rows


def _role(proc: psutil.Process, root: psutil.Process) -> str:
    """A short name for a job process: the launcher, a helper it started, or a worker."""
    if proc.pid == root.pid:
        return "launcher (root)"
    cmd = " ".join(proc.cmdline())
    if "resource_tracker" in cmd:
        return "resource tracker"
    if "launcher.supervise.reaper" in cmd or "launcher.reaper" in cmd:  # since the stage move, and before
        return "reaper"
    if "forkserver" in cmd and proc.ppid() == root.pid:
        return "forkserver"
    if proc.name() == "launcher-agent":
        return "agent"
    return "worker"


@dataclass(frozen=True)
class JobRun:
    """One run of a command, timed until it exited and every process it started was gone."""

    seconds: float  # start → command exited and all its processes gone
    exit_seconds: float  # start → command exited
    returncode: int
    output: str  # stdout and stderr together
    exited_at: float  # time.time() when the command exited
    gone_at: float  # time.time() when the last process was seen gone
    tmp_left: tuple[str, ...] = ()  # what the job left in its TMPDIR
    peak_pss: int = 0  # bytes, sum over the tree at the peak sample (only when sampled)
    peak_processes: tuple[ProcMemory, ...] = ()  # every process at the sample with the largest PSS sum


def run_job(cmd: Sequence[str], *, cwd: str | None = None, env: Mapping[str, str] | None = None,
            timeout: float = 120.0, sample_every: float | None = None,
            while_running: Callable[[subprocess.Popen[bytes], str], None] | None = None) -> JobRun:
    """Run ``cmd`` and time it until it exited and every process it started is gone.

    ``sample_every``: sample the tree's PSS at this interval while the command runs.
    ``while_running(proc, tag)``: called once the command started; it may kill it.
    Runs in a fresh directory that is also its TMPDIR's parent; both are removed
    afterwards, and whatever process is left is killed, on success and on error alike.
    """
    tag = processes.new_tag()
    peak: list[ProcMemory] = []
    with tempfile.TemporaryDirectory(prefix="launcher-bench-") as scratch, tempfile.TemporaryFile() as out:
        tmp = os.path.join(scratch, "tmp")  # the job's TMPDIR: what it leaves there is reported, then removed
        os.mkdir(tmp)
        full_env = {**os.environ, **(env or {}), "TMPDIR": tmp, processes.TAG_VARIABLE: tag}
        start = time.perf_counter()
        start_wall = time.time()
        proc = subprocess.Popen(list(cmd), cwd=cwd or scratch, env=full_env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT)
        try:
            if while_running is not None:
                while_running(proc, tag)
            if sample_every is not None:
                peak = _sample_until_exit(proc, sample_every, start + timeout)
            returncode = _wait_exactly(proc, max(0.1, timeout - (time.perf_counter() - start)))
            exit_seconds = time.perf_counter() - start
            if returncode is None:
                raise JobError(f"timed out after {timeout:.0f} s: {' '.join(cmd)}")
            gone_at = wait_until_gone(tag, timeout=max(5.0, timeout - exit_seconds))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            processes.kill_tagged(tag)
        out.seek(0)
        output = out.read().decode(errors="replace")
        tmp_left = tuple(sorted(os.listdir(tmp)))
    return JobRun(
        seconds=gone_at - start_wall,
        exit_seconds=exit_seconds,
        returncode=returncode,
        output=output,
        exited_at=start_wall + exit_seconds,
        gone_at=gone_at,
        tmp_left=tmp_left,
        peak_pss=sum(row.pss for row in peak),
        peak_processes=tuple(peak),
    )


def _wait_exactly(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    """The exit code, seen the moment the process exits; None if it was killed at ``timeout``.

    ``Popen.wait(timeout)`` polls with sleeps of up to 50 ms, which would blur every
    figure; a blocking wait with a timer that kills on timeout does not.
    """
    expired = threading.Event()

    def kill() -> None:
        expired.set()
        proc.kill()

    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        returncode = proc.wait()
    finally:
        timer.cancel()
    return None if expired.is_set() else returncode


def _sample_until_exit(proc: subprocess.Popen[bytes], every: float,
                       deadline: float) -> list[ProcMemory]:
    """Sample the tree under ``proc`` every ``every`` seconds; the sample with the largest PSS sum."""
    root = psutil.Process(proc.pid)
    best: list[ProcMemory] = []
    next_at = time.perf_counter()
    while proc.poll() is None and time.perf_counter() < deadline:
        rows = tree_memory(root)
        if sum(r.pss for r in rows) > sum(r.pss for r in best):
            best = rows
        next_at += every
        time.sleep(max(0.0, next_at - time.perf_counter()))
    return best


def expect_success(run: JobRun, what: str) -> JobRun:
    if run.returncode != 0:
        raise JobError(f"{what} exited {run.returncode}:\n{run.output[-3000:]}")
    return run


# ---------------------------------------------------------------- interleaving and statistics


@dataclass(frozen=True)
class Variant:
    """One side of a comparison: ``runs`` measured runs after ``warmup`` dropped ones."""

    name: str
    measure: Callable[[], Any]
    runs: int
    warmup: int = 1


def interleave(variants: Sequence[Variant], progress: str = "") -> dict[str, list[Any]]:
    """Round-robin A B A B ...: round i runs every variant that has runs left; warm-ups dropped."""
    kept: dict[str, list[Any]] = {v.name: [] for v in variants}
    rounds = max(v.warmup + v.runs for v in variants)
    for i in range(rounds):
        for v in variants:
            if i >= v.warmup + v.runs:
                continue
            value = v.measure()
            if i >= v.warmup:
                kept[v.name].append(value)
        if progress:
            print(f"  {progress}: round {i + 1}/{rounds}", file=sys.stderr, flush=True)
    return kept


def ours_vs_anchor(ours: Callable[[], T], anchor: Callable[[], T], runs: int,
                   progress: str = "") -> tuple[list[T], list[T]]:
    """The usual pair: ``runs`` measured runs each, one warm-up each dropped, interleaved."""
    kept = interleave([Variant("ours", ours, runs), Variant("anchor", anchor, runs)], progress)
    return kept["ours"], kept["anchor"]


def summary(values: Sequence[float]) -> dict[str, Any]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": len(values), "values": list(values)}


def ratio(ours: float, anchor: float) -> float:
    return ours / anchor if anchor else float("nan")


def verdict(met: bool) -> str:
    return "met" if met else "**missed**"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------- command line and JSON


def parser(description: str) -> argparse.ArgumentParser:
    """The options every benchmark takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--runs", type=int, default=5, help="measured runs per variant (default 5; +1 warm-up)")
    p.add_argument("--quick", action="store_true", help="2 measured runs: a smoke test, not a result")
    p.add_argument("--json", metavar="PATH", help="JSON output (default benchmarks/results/NAME.json)")
    p.add_argument("--launcher-path", metavar="DIR",
                   help="benchmark the launcher of this checkout (put first on PYTHONPATH of every command, "
                        "ours and torchrun alike); default: the one `python -m launcher` imports")
    return p


def prepare(args: argparse.Namespace) -> int:
    """Apply the common options (``--launcher-path``); returns the measured runs per variant.

    Also starts the count of CPU time spent by other processes (see ``contention``).
    """
    global _baseline, _load_start
    _baseline, _load_start = _cpu_snapshot(), os.getloadavg()
    if args.launcher_path:
        use_launcher_from(args.launcher_path)
    runs = 2 if args.quick else args.runs
    if runs < 1:
        raise SystemExit("--runs must be at least 1")
    return runs


_baseline: tuple[float, float, float] | None = None  # (wall, machine busy CPU s, our CPU s incl. children)
_load_start: tuple[float, float, float] | None = None


def _cpu_snapshot() -> tuple[float, float, float]:
    times = psutil.cpu_times()
    busy = sum(getattr(times, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq", "steal"))
    ours = sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return time.monotonic(), busy, ours


def contention() -> dict[str, float] | None:
    """Share of the machine's CPUs that other processes kept busy since ``prepare``.

    Machine-wide busy time minus this process and the children it reaped (the
    jobs: orphans re-parented to init are not counted as ours). A noisy
    neighbour shows here; ratios taken while it is high are less reliable.
    """
    if _baseline is None:
        return None
    wall, busy, ours = (after - before for after, before in zip(_cpu_snapshot(), _baseline, strict=True))
    capacity = wall * (os.cpu_count() or 1)
    return {"seconds": round(wall, 1), "ours_cpu_share": round(ours / capacity, 3),
            "others_cpu_share": round(max(0.0, busy - ours) / capacity, 3)}


def use_launcher_from(checkout: str) -> None:
    """Every command started from now on imports ``launcher`` from ``checkout``."""
    path = str(Path(checkout).resolve())
    if not (Path(path) / "launcher" / "__init__.py").is_file():
        raise SystemExit(f"--launcher-path {checkout}: no launcher/__init__.py there")
    rest = os.environ.get("PYTHONPATH", "")
    if rest.split(os.pathsep)[0] != path:
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (path, rest) if p)


def machine() -> dict[str, Any]:
    """Where the numbers come from: cores, usable CPUs, memory, versions, and the launcher measured."""
    return {
        "cores": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_quota": _cpu_quota(),
        "cpu_model": _cpu_model(),
        "memory_gib": round(psutil.virtual_memory().total / 1024**3, 1),
        "python": platform.python_version(),
        "torch": _version("torch"),
        "psutil": psutil.__version__,
        "platform": platform.platform(),
        "launcher": launcher_source(),
    }


def describe_machine(facts: Mapping[str, Any]) -> str:
    """One line for a report: the hardware, the versions, and which launcher was measured."""
    source = facts.get("launcher") or {}
    state = " (with uncommitted changes)" if source.get("dirty") else ""
    return (f"{facts['cores']} cores ({facts['usable_cpus']} usable, cgroup cpu.max {facts['cpu_quota']}), "
            f"{facts['cpu_model']}, {facts['memory_gib']} GiB; {facts['platform']}; "
            f"Python {facts['python']}, torch {facts['torch']}; "
            f"launcher from {source.get('path')} at {str(source.get('commit'))[:10]}{state}")


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_quota() -> str | None:
    try:
        return Path("/sys/fs/cgroup/cpu.max").read_text().strip()
    except OSError:
        return None


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def launcher_source() -> dict[str, Any]:
    """The launcher ``python -m launcher`` runs from a neutral directory: its path and git state."""
    with tempfile.TemporaryDirectory() as cwd:
        where = subprocess.run([PYTHON, "-c", "import launcher; print(launcher.__file__)"], cwd=cwd,
                               capture_output=True, text=True, check=False).stdout.strip()
    repo = str(Path(where).parent.parent) if where else None
    info: dict[str, Any] = {"path": where or None, "commit": None, "last_launcher_commit": None,
                            "dirty": None}
    if repo:
        def git(*args: str) -> str | None:
            done = subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True, check=False)
            return done.stdout.strip() if done.returncode == 0 else None

        info["commit"] = git("rev-parse", "HEAD")
        info["last_launcher_commit"] = git("log", "-1", "--format=%h %s", "--", "launcher")
        status = git("status", "--porcelain", "--", "launcher")
        info["dirty"] = None if status is None else bool(status)
    return info


def write_json(name: str, data: Mapping[str, Any], path: str | None, argv: Sequence[str]) -> Path:
    """Write ``data`` with the date, command and machine; returns the path written."""
    target = Path(path) if path else RESULTS_DIR / f"{name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": name,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": [PYTHON, "-m", f"benchmarks.{name}", *argv],
        "machine": machine(),
        "load_average_start": _load_start,  # 1, 5, 15 min: other work on the machine shows here
        "load_average_end": os.getloadavg(),
        "cpu": contention(),
        **data,
    }
    target.write_text(json.dumps(document, indent=2) + "\n")
    return target


def finish(name: str, data: Mapping[str, Any], args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Print how busy the machine was, write the JSON, print where; the benchmark's exit code."""
    cpu = contention()
    if cpu is not None:
        print(f"\nCPU while this ran ({cpu['seconds']:.0f} s): the benchmarked commands "
              f"{cpu['ours_cpu_share']:.0%} of the machine, other processes {cpu['others_cpu_share']:.0%}.")
    print(f"\nJSON: {write_json(name, data, args.json, argv)}")
    return 0


def run_benchmark_main(name: str, description: str, measure: Callable[[int], Mapping[str, Any]],
                       render: Callable[[Any], str], argv: Sequence[str] | None) -> int:
    """The usual ``main``: the common options, measure, print the table, write the JSON."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser(description).parse_args(argv)
    data = measure(prepare(args))
    print(render(data))
    return finish(name, data, args, argv)


def job(name: str) -> str:
    """Absolute path of a job script under ``benchmarks/jobs``."""
    return str(JOBS_DIR / name)
