"""Worker output through the launcher vs the same script writing to a file directly.

``jobs/output.py`` writes 800k carriage-return progress updates (each flushed, as
tqdm does), or one 64 MiB line without a newline; each also at half size, to show
how the time grows with the data. Every side's stdout goes to a file: ``python
output.py ... > file`` (direct) against ``python -m launcher --nprocs 1 output.py
... > file`` (bytes pass through) and ``--nprocs 2`` (rank 1 silent: rank 0's lines
prefixed). The figure is the time from the job's first byte (it writes
``time.time()`` just before) until the output file stopped growing (polled every
millisecond), so the launcher's own start and stop do not count. Also the peak RSS
(``VmHWM``) of the launcher and of its agent process (which reads the output when it
runs in a process of its own). Targets: within 1.5x of direct for the full sizes;
twice the data in at most 2.2x the time.
"""

from __future__ import annotations

import functools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

from benchmarks.common import (
    LAUNCHER,
    MIB,
    PYTHON,
    JobError,
    Variant,
    expect_success,
    interleave,
    job,
    markdown_table,
    ratio,
    run_benchmark_main,
    run_job,
    summary,
    verdict,
)

NAME = "output_path"
CASES = (("cr", 400_000), ("cr", 800_000), ("line", 32), ("line", 64))  # (kind, updates or MiB): half, full
SIDES = {"direct": [PYTHON], "ours": [*LAUNCHER, "--nprocs", "1"], "ours, 2 ranks": [*LAUNCHER, "--nprocs", "2"]}
RATIO_TARGET = 1.5
GROWTH_TARGET = 2.2
POLL_S = 0.001
SAMPLE_EVERY = 10  # polls between two samples of peak RSS and CPU time
FIND_EVERY = 50  # polls between two looks for the agent process
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
TIMEOUT_S = 300.0


def label(kind: str, size: int) -> str:
    return f"{size // 1000}k `\\r` updates" if kind == "cr" else f"one {size} MiB line"


class OutputWatch:
    """Polls the output file while the command runs: when it last grew; peak RSS and CPU of launcher and agent."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = 0
        self.grown_at = 0.0
        self.peak_rss: dict[str, int] = {}  # role → bytes (VmHWM)
        self.cpu: dict[str, float] = {}  # role → CPU seconds at the last sample
        self._pids: dict[str, int] = {}

    def __call__(self, proc: subprocess.Popen[bytes], tag: str) -> None:
        self._pids["launcher"] = proc.pid
        polls = 0
        while proc.poll() is None:
            self._check_size()
            if "agent" not in self._pids and polls % FIND_EVERY == 0:
                self._find_agent(proc.pid)
            if polls % SAMPLE_EVERY == 0:
                self._sample()
            polls += 1
            time.sleep(POLL_S)
        self._check_size()

    def _check_size(self) -> None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size != self.size:
            self.size, self.grown_at = size, time.time()

    def _find_agent(self, pid: int) -> None:
        try:
            agents = [p.pid for p in psutil.Process(pid).children(recursive=True) if p.name() == "launcher-agent"]
        except psutil.Error:
            return
        if agents:
            self._pids["agent"] = agents[0]

    def _sample(self) -> None:
        for role, pid in self._pids.items():
            usage = _usage(pid)
            if usage is not None:
                self.peak_rss[role] = max(self.peak_rss.get(role, 0), usage[0])
                self.cpu[role] = usage[1]


def _usage(pid: int) -> tuple[int, float] | None:
    """A process's peak resident set size so far (bytes) and CPU time (s); Linux. None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        peak = next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmHWM:"))
    except (OSError, ValueError, StopIteration):
        return None
    return peak, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def check_output(path: Path, kind: str, size: int, side: str) -> None:
    """The job's output arrived whole: the final progress state, or every byte of the long line."""
    data = path.read_bytes()
    final = f"step {size - 1:>7}/{size}\n".encode()
    if kind == "cr" and not data.endswith(final):
        raise JobError(f"{side}: the output does not end with the last update: {data[-200:]!r}")
    if kind == "line" and data.count(b"x") != size * MIB:
        raise JobError(f"{side}: {data.count(b'x')} of {size * MIB} bytes of the long line arrived")


def output_run(side: str, kind: str, size: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="launcher-bench-") as where:
        out, stamp = Path(where, "out"), Path(where, "stamp")
        command = [*SIDES[side], job("output.py"), kind, str(size), str(stamp)]
        watch = OutputWatch(out)
        run = run_job(["sh", "-c", 'exec "$@" > "$0"', str(out), *command], timeout=TIMEOUT_S,
                      while_running=watch)
        expect_success(run, " ".join(command))
        check_output(out, kind, size, side)
        started = float(stamp.read_text())
    return {"seconds": watch.grown_at - started, "wall": run.exit_seconds, "bytes": watch.size,
            **{f"{role}_peak_rss_mib": round(peak / MIB, 1) for role, peak in watch.peak_rss.items()},
            **{f"{role}_cpu": cpu for role, cpu in watch.cpu.items()}}


def measure(runs: int) -> dict[str, Any]:
    """Every case and side in each round (half and full sizes under the same load), then medians."""
    variants = [Variant(f"{kind} {size} {side}", functools.partial(output_run, side, kind, size), runs)
                for kind, size in CASES for side in SIDES]
    kept = interleave(variants, progress="output path")
    cases = []
    for kind, size in CASES:
        row: dict[str, Any] = {"kind": kind, "size": size, "label": label(kind, size)}
        for side in SIDES:
            results = kept[f"{kind} {size} {side}"]
            row[side] = summary([r["seconds"] for r in results])
            row[side]["runs_detail"] = results
            for role in ("launcher", "agent"):
                peaks = [r[f"{role}_peak_rss_mib"] for r in results if f"{role}_peak_rss_mib" in r]
                if peaks:
                    row[side][f"{role}_peak_rss_mib"] = max(peaks)
                cpu = [r[f"{role}_cpu"] for r in results if f"{role}_cpu" in r]
                if cpu and side != "direct":
                    row[side][f"{role}_cpu"] = statistics.median(cpu)
            if side != "direct":
                row[side]["ratio"] = ratio(row[side]["median"], row["direct"]["median"])
        cases.append(row)
    growth = []
    for kind in ("cr", "line"):
        half, full = (c for c in cases if c["kind"] == kind)
        item: dict[str, Any] = {"kind": kind, "from": half["label"], "to": full["label"]}
        for side in SIDES:
            item[side] = ratio(full[side]["median"], half[side]["median"])
            if side != "direct":
                item[f"{side} agent cpu"] = ratio(full[side].get("agent_cpu", 0), half[side].get("agent_cpu", 0))
        growth.append(item)
    full_cases = [cases[1], cases[3]]
    met_ratio = all(c[side]["ratio"] <= RATIO_TARGET for c in full_cases for side in SIDES if side != "direct")
    met_growth = all(g[side] <= GROWTH_TARGET for g in growth for side in SIDES if side != "direct")
    return {"cases": cases, "growth": growth, "ratio_target": RATIO_TARGET, "growth_target": GROWTH_TARGET,
            "met": met_ratio and met_growth, "commands": {side: [*cmd, job("output.py"), "KIND", "SIZE", "STAMP"]
                                                          for side, cmd in SIDES.items()}}


def render(data: dict[str, Any]) -> str:
    ours = ("ours", "ours, 2 ranks")
    rows = []
    for c in data["cases"]:
        full = c["size"] in (800_000, 64)
        cells: list[Any] = [c["label"], f"{c['direct']['median']:.3f} ({c['direct']['min']:.3f})"]
        for side in ours:
            best = ratio(c[side]["min"], c["direct"]["min"])
            cells += [f"{c[side]['median']:.3f} ({c[side]['min']:.3f})", f"{c[side]['ratio']:.2f}x ({best:.2f}x)"]
        met = all(c[side]["ratio"] <= RATIO_TARGET for side in ours)
        cells += [f"≤ {RATIO_TARGET}x", verdict(met)] if full else ["", ""]
        rows.append(cells)
    runs = data["cases"][0]["direct"]["runs"]
    head = (f"Output path: medians of {runs} runs per side (first round dropped; every case and side in each "
            "round), seconds from the job's first byte until its output file stopped growing; stdout to a file "
            "on every side. In brackets: the fastest run of each side, and their ratio.")
    table = markdown_table(["output", "direct (s)", "ours, 1 rank (s)", "ratio", "ours, 2 ranks (s)", "ratio",
                            "target", ""], rows)
    growth_rows = [[g["from"] + " → " + g["to"], f"{g['direct']:.2f}x", f"{g['ours']:.2f}x",
                    f"{g['ours, 2 ranks']:.2f}x", f"≤ {GROWTH_TARGET}x",
                    verdict(max(g[side] for side in ours) <= GROWTH_TARGET),
                    f"{g['ours agent cpu']:.2f}x", f"{g['ours, 2 ranks agent cpu']:.2f}x"] for g in data["growth"]]
    growth = markdown_table(["twice the data", "direct", "ours, 1 rank", "ours, 2 ranks", "target", "",
                             "agent CPU, 1 rank", "agent CPU, 2 ranks"], growth_rows)
    usage_rows = [[c["label"], *(f"{c[side].get(role + '_peak_rss_mib', float('nan')):.0f}"
                                 for side in ours for role in ("launcher", "agent")),
                   *(f"{c[side].get('agent_cpu', float('nan')):.2f}" for side in ours)]
                  for c in data["cases"]]
    usage = markdown_table(["output", "peak RSS MiB, 1 rank: launcher", "agent", "2 ranks: launcher", "agent",
                            "agent CPU s, 1 rank", "2 ranks"], usage_rows)
    return (f"{head}\n\n{table}\n\nTime for twice the data (median / median), and the agent's CPU time for "
            f"twice the data:\n\n{growth}\n\nPeak RSS (VmHWM, largest over the runs) and CPU time (median; "
            "the agent reads the output, from its start to its last sample, 10 ms apart) of the launcher's "
            f"processes:\n\n{usage}")


def main(argv: Sequence[str] | None = None) -> int:
    return run_benchmark_main(NAME, __doc__.splitlines()[0], measure, render, argv)


if __name__ == "__main__":
    sys.exit(main())
