"""Peak memory of the whole job (sum of PSS over its process tree), 4 processes, ours vs torchrun.

The trivial gloo job holds every rank for 1 s after its all_reduce (barrier,
then sleep) while the tree under the launcher is sampled every 20 ms. Linux
only (PSS). Target (issue 7): at most 0.5x torchrun's peak.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

from benchmarks.common import (
    LAUNCHER,
    MIB,
    TORCHRUN,
    JobRun,
    expect_success,
    job,
    markdown_table,
    ours_vs_anchor,
    ratio,
    run_benchmark_main,
    run_job,
    summary,
    verdict,
)

NAME = "memory"
NPROCS = 4
HOLD_S = 1.0
SAMPLE_EVERY_S = 0.02
TARGET = 0.5


def sampled(cmd: Sequence[str]) -> JobRun:
    return expect_success(run_job(cmd, sample_every=SAMPLE_EVERY_S), " ".join(cmd))


def breakdown(run: JobRun) -> dict[str, Any]:
    """PSS and USS by process role at the peak sample, MiB."""
    pss: Counter[str] = Counter()
    uss: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    for proc in run.peak_processes:
        pss[proc.role] += proc.pss
        uss[proc.role] += proc.uss
        counts[proc.role] += 1
    return {role: {"processes": counts[role], "pss_mib": round(pss[role] / MIB, 1),
                   "uss_mib": round(uss[role] / MIB, 1)} for role in pss}


def measure(runs: int) -> dict[str, Any]:
    script = job("trivial.py")
    ours = [*LAUNCHER, "--nprocs", str(NPROCS), script, "--hold", str(HOLD_S)]
    anchor = [*TORCHRUN, "--standalone", "--nproc-per-node", str(NPROCS), script, "--hold", str(HOLD_S)]
    runs_ours, runs_anchor = ours_vs_anchor(lambda: sampled(ours), lambda: sampled(anchor), runs, "memory")
    data: dict[str, Any] = {"nprocs": NPROCS, "hold_s": HOLD_S, "sample_every_s": SAMPLE_EVERY_S,
                            "ours_command": ours, "anchor_command": anchor}
    for side, kept in (("ours", runs_ours), ("anchor", runs_anchor)):
        data[side] = summary([r.peak_pss / MIB for r in kept])
        data[side]["processes_at_peak"] = [len(r.peak_processes) for r in kept]
        data[side]["uss"] = summary([sum(p.uss for p in r.peak_processes) / MIB for r in kept])
        data[side]["peak_rss_sum_mib"] = [round(sum(p.rss for p in r.peak_processes) / MIB, 1) for r in kept]
        data[side]["breakdown_last_run"] = breakdown(kept[-1])
    data["ratio"] = ratio(data["ours"]["median"], data["anchor"]["median"])
    data["uss_ratio"] = ratio(data["ours"]["uss"]["median"], data["anchor"]["uss"]["median"])
    data["target_ratio"] = TARGET
    data["met"] = data["ratio"] <= TARGET
    return data


def render(data: dict[str, Any]) -> str:
    def parts(side: str) -> str:
        return ", ".join(f"{role} {v['pss_mib']:.0f}" if v["processes"] == 1 else
                         f"{v['processes']} {role}s {v['pss_mib']:.0f} together"
                         for role, v in sorted(data[side]["breakdown_last_run"].items()))

    pss = [f"{data['ours']['median']:.0f}", f"{data['anchor']['median']:.0f}", f"{data['ratio']:.2f}x"]
    rows = [[f"trivial job, {data['nprocs']} procs, peak Σ PSS (MiB)", *pss, f"≤ {TARGET}x",
             verdict(data["met"])],
            ["Σ USS at that sample (MiB; context, no target)", f"{data['ours']['uss']['median']:.0f}",
             f"{data['anchor']['uss']['median']:.0f}", f"{data['uss_ratio']:.2f}x", "", ""]]
    head = (f"Memory: medians of {data['ours']['runs']} runs per side (first run dropped, interleaved); "
            f"the tree sampled every {SAMPLE_EVERY_S * 1000:.0f} ms, peak of the per-sample sum.")
    foot = (f"\n\nAt the peak (last run, MiB of PSS by process): ours: {parts('ours')}; "
            f"torchrun: {parts('anchor')}. PSS divides a shared page among every process that maps it, "
            "other torch processes on the machine included: the sums drop while such processes run.")
    return head + "\n\n" + markdown_table(["case", "ours", "torchrun", "ratio", "target", ""], rows) + foot


def main(argv: Sequence[str] | None = None) -> int:
    if not sys.platform.startswith("linux"):
        print("memory: PSS needs Linux; skipped", file=sys.stderr)
        return 0
    return run_benchmark_main(NAME, __doc__.splitlines()[0], measure, render, argv)


if __name__ == "__main__":
    sys.exit(main())
