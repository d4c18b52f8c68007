"""Launch-to-gone time of the trivial gloo job, ours vs torchrun; ``--help`` and ``import launcher``.

Time = from starting the command until it has exited and every process it
started is gone. Targets (issue 7): 0.6x torchrun at 2 processes, 0.4x at 4;
``--help`` 0.1x torchrun's; ``import launcher`` adds at most 50 ms to ``python -c pass``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from benchmarks.common import (
    LAUNCHER,
    PYTHON,
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

NAME = "launch_overhead"
JOB_TARGETS = {2: 0.6, 4: 0.4}
HELP_TARGET = 0.1
IMPORT_TARGET_MS = 50.0
CHEAP_RUNS = 2  # --help and import runs are short: this many times more measured runs


def timed(cmd: Sequence[str]) -> JobRun:
    return expect_success(run_job(cmd), " ".join(cmd))


def job_cases(nprocs: int) -> list[tuple[str, list[str], list[str]]]:
    """(entrypoint, ours, anchor): the function's anchor is torchrun running a script that calls it."""
    script = job("trivial.py")
    return [
        ("script", [*LAUNCHER, "--nprocs", str(nprocs), script],
         [*TORCHRUN, "--standalone", "--nproc-per-node", str(nprocs), script]),
        ("function", [*LAUNCHER, "--nprocs", str(nprocs), f"{script}:work"],
         [*TORCHRUN, "--standalone", "--nproc-per-node", str(nprocs), script]),
    ]


def compare(ours: Sequence[str], anchor: Sequence[str], runs: int, label: str) -> dict[str, Any]:
    kept_ours, kept_anchor = ours_vs_anchor(lambda: timed(ours), lambda: timed(anchor), runs, label)
    result: dict[str, Any] = {"ours": summary([r.seconds for r in kept_ours]),
                              "anchor": summary([r.seconds for r in kept_anchor]),
                              "ours_command": list(ours), "anchor_command": list(anchor)}
    for side, kept in (("ours", kept_ours), ("anchor", kept_anchor)):
        result[side]["tmp_left"] = [list(r.tmp_left) for r in kept]
    result["ratio"] = ratio(result["ours"]["median"], result["anchor"]["median"])
    return result


def measure(runs: int) -> dict[str, Any]:
    jobs = []
    for nprocs in (2, 4):
        for entry, ours, anchor in job_cases(nprocs):
            row = compare(ours, anchor, runs, f"{entry} x{nprocs}")
            row.update(entrypoint=entry, nprocs=nprocs, target_ratio=JOB_TARGETS[nprocs],
                       met=row["ratio"] <= JOB_TARGETS[nprocs])
            jobs.append(row)
    cheap = runs * CHEAP_RUNS
    help_row = compare([*LAUNCHER, "--help"], [*TORCHRUN, "--help"], cheap, "--help")
    help_row.update(target_ratio=HELP_TARGET, met=help_row["ratio"] <= HELP_TARGET)
    import_row = compare([PYTHON, "-c", "import launcher"], [PYTHON, "-c", "pass"], cheap, "import")
    added_ms = (import_row["ours"]["median"] - import_row["anchor"]["median"]) * 1000
    import_row.update(added_ms=added_ms, target_added_ms=IMPORT_TARGET_MS, met=added_ms <= IMPORT_TARGET_MS)
    return {"jobs": jobs, "help": help_row, "import": import_row}


def render(data: dict[str, Any]) -> str:
    rows: list[list[Any]] = []
    for r in data["jobs"]:
        rows.append([f"trivial job, {r['entrypoint']}, {r['nprocs']} procs", r["ours"]["median"],
                     r["anchor"]["median"], f"{r['ratio']:.2f}x", f"≤ {r['target_ratio']}x",
                     verdict(r["met"])])
    h = data["help"]
    rows.append(["`--help`", h["ours"]["median"], h["anchor"]["median"], f"{h['ratio']:.3f}x",
                 f"≤ {HELP_TARGET}x", verdict(h["met"])])
    i = data["import"]
    rows.append(["`import launcher` vs `python -c pass`", i["ours"]["median"], i["anchor"]["median"],
                 f"{i['added_ms']:+.0f} ms", f"≤ +{IMPORT_TARGET_MS:.0f} ms", verdict(i["met"])])
    runs = data["jobs"][0]["ours"]["runs"]
    cheap = data["help"]["ours"]["runs"]
    head = (f"Launch overhead: medians of {runs} runs per side for jobs, {cheap} for `--help`/import "
            "(first run dropped, interleaved); seconds until the command exited and all its processes "
            "were gone.")
    table = markdown_table(["case", "ours (s)", "torchrun (s)", "ratio", "target", ""], rows)
    return f"{head}\n\n{table}\n\n{tmp_note(data['jobs'])}"


def tmp_note(rows: Sequence[dict[str, Any]]) -> str:
    """What the job runs left in their TMPDIR (each run had its own)."""
    parts = []
    for side, name in (("ours", "ours"), ("anchor", "torchrun")):
        left = [entry for r in rows for run in r[side]["tmp_left"] for entry in run]
        runs = sum(len(r[side]["tmp_left"]) for r in rows)
        dirty = sum(bool(run) for r in rows for run in r[side]["tmp_left"])
        example = f" (e.g. `{left[0]}`)" if left else ""
        parts.append(f"{name}: {dirty} of {runs} runs left something{example}")
    return "Left in the job's TMPDIR after the trivial-job runs: " + "; ".join(parts) + "."


def main(argv: Sequence[str] | None = None) -> int:
    return run_benchmark_main(NAME, __doc__.splitlines()[0], measure, render, argv)


if __name__ == "__main__":
    sys.exit(main())
