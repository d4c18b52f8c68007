"""Monitor overhead: the same CPU training loop with the monitor off and on (every 1 s and every 0.1 s), in one run.

Each variant launches ``benchmarks/jobs/monitored_loop.py`` (a 3-layer MLP under DDP on 2 gloo
ranks, ``ctx.step()`` and ``ctx.log()`` at every step) through the launcher: ``off`` with
``--set monitor.enabled=false`` (no monitor thread in the workers, no reader in the launcher),
``1 s`` and ``0.1 s`` with ``--monitor-every``, a run folder kept (``--log-dir``) so that the
metrics are written as a monitored job writes them. Steps per second are measured by each rank
over its training loop (after 20 warm-up steps), averaged over the ranks; medians of interleaved
runs. Overhead: ``1 - on / off``. Target: below 1% at 1 s. The last 0.1 s run is drawn with
``launcher report`` (``benchmarks/results/monitor_overhead.png``).

    python -m benchmarks.monitor_overhead [--quick] [--runs N] [--json PATH]
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import (
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

NAME = "monitor_overhead"
NPROCS = 2
STEPS = 600
TARGET = 0.01  # overhead at 1 s
VARIANTS = {"off": ["--set", "monitor.enabled=false"], "1 s": ["--monitor-every", "1"],
            "0.1 s": ["--monitor-every", "0.1"]}
_LOOP = re.compile(r"LOOP (\d+) ([\d.]+)")
_kept_runs: dict[str, Path] = {}


def loop_rate(name: str, flags: list[str], logs: Path) -> float:
    """One launch of the loop: the ranks' mean steps per second."""
    folder = logs / name.replace(" ", "")
    command = [sys.executable, "-m", "launcher", "--nprocs", str(NPROCS), "--log-dir", str(folder), *flags,
               job("monitored_loop.py"), str(STEPS)]
    ran = expect_success(run_job(command, timeout=300), f"the loop ({name})")
    rates = [float(rate) for _, rate in _LOOP.findall(ran.output)]
    if len(rates) != NPROCS:
        raise RuntimeError(f"expected {NPROCS} LOOP lines, got:\n{ran.output[-2000:]}")
    runs = sorted(folder.iterdir())
    _kept_runs[name] = runs[-1]
    return statistics.mean(rates)


def measure(runs: int) -> dict[str, Any]:
    logs = Path(tempfile.mkdtemp(prefix="launcher-monitor-bench-"))
    try:
        kept = interleave([Variant(name, lambda n=name, f=flags: loop_rate(n, f, logs), runs)  # type: ignore[misc]
                           for name, flags in VARIANTS.items()], progress=NAME)
        rates = {name: summary(values) for name, values in kept.items()}
        off = rates["off"]["median"]
        overhead = {name: 1 - ratio(rates[name]["median"], off) for name in ("1 s", "0.1 s")}
        records = sum(1 for _ in (_kept_runs["0.1 s"] / "metrics").glob("rank_*.jsonl"))
        data = {"nprocs": NPROCS, "steps": STEPS, "steps_per_s": rates, "overhead": overhead,
                "target": TARGET, "met": overhead["1 s"] < TARGET, "metrics_files_0_1s": records}
        data["report"] = draw(_kept_runs["0.1 s"])
        return data
    finally:
        shutil.rmtree(logs, ignore_errors=True)


def draw(run: Path) -> dict[str, str]:
    """``launcher report`` of one monitored run: its summary, and the PNG copied next to the results."""
    out = Path(__file__).parent / "results" / f"{NAME}.png"
    done = subprocess.run([sys.executable, "-m", "launcher", "report", str(run), "--output", str(out)],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"launcher report exited {done.returncode}: {done.stderr}")
    return {"png": str(out.relative_to(Path(__file__).parent.parent)), "summary": done.stdout}


def render(data: dict[str, Any]) -> str:
    off = data["steps_per_s"]["off"]["median"]
    rows = []
    for name, rates in data["steps_per_s"].items():
        cost = "" if name == "off" else f"{100 * data['overhead'][name]:+.2f}%"
        rows.append([name, f"{rates['median']:.1f}", f"{rates['min']:.1f} .. {rates['max']:.1f}",
                     f"{ratio(rates['median'], off):.4f}", cost])
    runs = data["steps_per_s"]["off"]["runs"]
    head = (f"Monitor overhead: steps/s of a {data['nprocs']}-rank DDP MLP loop ({data['steps']} steps, ctx.step and "
            f"ctx.log every step), medians of {runs} interleaved launches.")
    foot = (f"\n\nTarget: overhead below {100 * data['target']:.0f}% with a record every second: "
            f"{verdict(data['met'])}.")
    foot += f"\n\nThe 0.1 s run, drawn by launcher report: {data['report']['png']}\n\n{data['report']['summary']}"
    return head + "\n\n" + markdown_table(["monitor", "steps/s", "range", "vs off", "overhead"], rows) + foot


def main(argv: Sequence[str] | None = None) -> int:
    return run_benchmark_main(NAME, __doc__.splitlines()[0], measure, render, argv)


if __name__ == "__main__":
    sys.exit(main())
