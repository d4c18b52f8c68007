"""Benchmark: does ``num_workers: auto`` and ``bench-data`` pick fast loader settings on this machine?

Two synthetic datasets, batch 32: an I/O-bound one (every item sleeps 2 ms) and
a CPU-bound one (every item spends about 0.5 ms in pure-python arithmetic).
For each, three interleaved runs (every setting once per round in a shuffled
order; 1 warm-up round dropped, medians of the kept rounds; each timed pass is
one epoch of ``--batches`` batches):

A. the ``num_workers`` sweep (0, 1, 2, 4, ... 8 x CPUs; persistent workers,
   prefetch 2) together with ``auto`` (what the pipeline chooses) and the
   tutorials' "0.75 x cores" rule;
B. ``bench-data``'s engine, run as the subcommand runs it, gives its pick;
C. that pick against run A's best, measured again side by side.

Targets (issue 5): I/O-bound ``auto`` >= 8x ``num_workers=0``; CPU-bound
``auto`` within 10% of the sweep's best; bench-data's pick within 5% of it.

    python benchmarks/data_loading.py [--json benchmarks/results/data_loading.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from launcher.bench.sweep import LoaderSetting, default_workers, measure, run_sweep
from launcher.hostinfo import usable_cpus
from launcher.runtime.data.num_workers import auto_num_workers

BATCH = 32


class IOBound(Dataset[torch.Tensor]):
    def __len__(self) -> int:
        return 100_000

    def __getitem__(self, i: int) -> torch.Tensor:
        time.sleep(0.002)
        return torch.full((16,), float(i))


class CPUBound(Dataset[torch.Tensor]):
    def __len__(self) -> int:
        return 100_000

    def __getitem__(self, i: int) -> torch.Tensor:
        total = sum(k * k for k in range(i % 7, 20_000))
        return torch.full((16,), float(total % 1000))


def persistent(workers: int) -> LoaderSetting:
    """A setting as the pipeline's defaults make it (persistent workers, prefetch 2)."""
    return LoaderSetting(workers, 2, True) if workers else LoaderSetting(0)


def bench(name: str, dataset: Any, *, batches: int, repeats: int) -> dict[str, Any]:
    cpus = usable_cpus()
    choice = auto_num_workers(dataset, local_world_size=1, batch_size=BATCH, batches=None)
    rule = max(1, int(0.75 * cpus))
    auto, zero, tutorial = persistent(choice.num_workers), LoaderSetting(0), persistent(rule)
    settings = list(dict.fromkeys([*(persistent(w) for w in default_workers(cpus)), auto, tutorial]))
    print(f"[{name}] {choice.reason}", file=sys.stderr)

    print(f"[{name}] run A: {len(settings)} settings x {repeats + 1} rounds", file=sys.stderr)
    run_a = {r.setting: r for r in measure(dataset, settings, batch_size=BATCH, batches=batches, repeats=repeats)}
    best = max(run_a.values(), key=lambda r: r.batches_per_second)
    speed = {s: r.batches_per_second for s, r in run_a.items()}

    print(f"[{name}] run B: bench-data's engine", file=sys.stderr)
    sweep = run_sweep(dataset, batch_size=BATCH, batches=batches, repeats=repeats)
    pick = sweep.best.setting

    print(f"[{name}] run C: the pick against run A's best", file=sys.stderr)
    pair = list(dict.fromkeys([pick, best.setting]))
    run_c = {
        r.setting: r.batches_per_second
        for r in measure(dataset, pair, batch_size=BATCH, batches=batches, repeats=repeats)
    }
    return {
        "auto_reason": choice.reason,
        "auto": auto.label(),
        "rule_0_75_cores": tutorial.label(),
        "sweep_best": best.setting.label(),
        "bench_data_pick": pick.label(),
        "batches_per_second": {s.label(): round(v, 2) for s, v in speed.items()},
        "auto_vs_workers0": speed[auto] / speed[zero],
        "auto_vs_rule": speed[auto] / speed[tutorial],
        "rule_vs_workers0": speed[tutorial] / speed[zero],
        "auto_vs_sweep_best": speed[auto] / best.batches_per_second,
        "pick_vs_sweep_best": run_c[pick] / run_c[best.setting],
        "pick_vs_sweep_best_bps": {s.label(): round(v, 2) for s, v in run_c.items()},
    }


def table(results: dict[str, dict[str, Any]]) -> str:
    rows = [
        "| dataset | auto picks | auto / num_workers=0 | auto / 0.75 x cores | auto / sweep best "
        "| bench-data pick / sweep best (run C) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        rows.append(
            f"| {name} | {r['auto']} | {r['auto_vs_workers0']:.2f}x | {r['auto_vs_rule']:.2f}x "
            f"| {r['auto_vs_sweep_best']:.2f} | {r['pick_vs_sweep_best']:.2f} |"
        )
    return "\n".join(rows)


def _load() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default="benchmarks/results/data_loading.json", help="where to write the figures")
    parser.add_argument("--batches", type=int, default=40, help="batches per timed pass (one epoch)")
    parser.add_argument("--repeats", type=int, default=5, help="kept rounds per run (one more is dropped)")
    args = parser.parse_args()
    started, load_before = time.perf_counter(), _load()
    results = {
        "I/O-bound (2 ms sleep/item)": bench("io", IOBound(), batches=args.batches, repeats=args.repeats),
        "CPU-bound (~0.5 ms python/item)": bench("cpu", CPUBound(), batches=args.batches, repeats=args.repeats),
    }
    io, cpu = results.values()
    targets = {
        "io_auto_at_least_8x_workers0": io["auto_vs_workers0"] >= 8,
        "cpu_auto_within_10pct_of_sweep_best": cpu["auto_vs_sweep_best"] >= 0.9,
        "io_pick_within_5pct_of_sweep_best": io["pick_vs_sweep_best"] >= 0.95,
        "cpu_pick_within_5pct_of_sweep_best": cpu["pick_vs_sweep_best"] >= 0.95,
    }
    print(table(results))
    print("\n" + "\n".join(f"- {k}: {'met' if v else 'MISSED'}" for k, v in targets.items()))
    report = {
        "machine": {
            "usable_cpus": usable_cpus(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "platform": platform.platform(),
            # Other work on the machine skews the CPU-bound figures most: record it.
            "load_average_1min_before_after": [load_before, _load()],
        },
        "batch_size": BATCH,
        "batches_per_pass": args.batches,
        "kept_rounds": args.repeats,
        "seconds": round(time.perf_counter() - started, 1),
        "results": results,
        "targets": targets,
    }
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {path} ({report['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
