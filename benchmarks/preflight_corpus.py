"""Preflight on the corpus of training scripts: what the source checks catch, and what a check costs per file.

For every case of ``tests/unit/preflight/corpus`` (``cases.yaml``, labelled by reading the scripts):

- verdicts, judged as ``launcher check`` judges (``tests/unit/preflight/corpus_cases.judge``), for Linux
  (the script's own processes forked) and for spawn (macOS): recall on the scripts with a mistake (every
  labelled mistake reported by its check at one of its lines; "exact" also with the labelled status),
  findings on clean scripts, FAILs on scripts that run correctly on Linux;
- time: the in-process check (``run_static_checks`` with the scan cache emptied before each run) and
  ``python -m launcher check ENTRY`` (wall time, from the case folder), each the median of ``--runs``
  per file after one dropped warm-up; the anchor is ``python -m py_compile ENTRY`` on the same file,
  interleaved with the launcher run. Both commands run with bytecode caching on, into a private
  ``PYTHONPYCACHEPREFIX`` (as an installed launcher has its ``.pyc`` files), whatever
  ``PYTHONDONTWRITEBYTECODE`` says here, and nothing is written next to the corpus.

Targets: recall at least 90 %, no finding on a clean script, no FAIL on a script that runs on Linux,
``launcher check`` under 150 ms a file (median over the files).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from benchmarks.common import (
    LAUNCHER,
    PYTHON,
    JobError,
    markdown_table,
    ours_vs_anchor,
    ratio,
    run_benchmark_main,
    verdict,
)
from launcher.preflight import files
from tests.unit.preflight.corpus_cases import CORPUS, JUDGEMENTS, at_mistake, judge, load_cases, problems

NAME = "preflight_corpus"
RECALL_TARGET = 0.90
MS_TARGET = 150.0
TIMEOUT_S = 60.0


def verdicts(case: dict[str, Any], judged: str) -> dict[str, Any]:
    """How the checker's findings for one case and judgement compare with the labels."""
    judgement = JUDGEMENTS[judged]
    findings = judge(case, judgement)
    expected = [m for m in case["mistakes"] if m[judgement.status_key] != "pass"]
    caught = [at_mistake(findings, case, m) for m in expected]
    exact = [any(f.status == m[judgement.status_key] for f in found) for m, found in zip(expected, caught, strict=True)]
    return {
        "mistakes": len(expected),
        "caught": all(caught) if expected else None,
        "exact": all(exact) if expected else None,
        "findings": [f"{f.check} {f.status.upper()} {f.where}" for f in problems(findings)],
        "fails": [f"{f.check} {f.where}" for f in findings if f.status == "fail"],
    }


def in_process_ms(case: dict[str, Any], runs: int) -> list[float]:
    """``runs`` timings (ms) of the Linux judgement, each with the scan and project caches emptied first; one
    warm-up dropped."""
    times = []
    for i in range(runs + 1):
        for cache in (files.SCANNED, files.PROJECTS):
            cache.clear()
        start = time.perf_counter()
        judge(case, JUDGEMENTS["linux"])
        if i:
            times.append((time.perf_counter() - start) * 1000)
    return times


def timed(cmd: Sequence[str], cwd: str, env: dict[str, str], ok: tuple[int, ...]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    elapsed = (time.perf_counter() - start) * 1000
    if done.returncode not in ok:
        output = done.stdout[-2000:] + done.stderr[-2000:]
        raise JobError(f"{' '.join(cmd)} (in {cwd}) exited {done.returncode}:\n{output}")
    return elapsed


def command_ms(case: dict[str, Any], runs: int, env: dict[str, str]) -> tuple[list[float], list[float]]:
    """``launcher check`` and the ``py_compile`` anchor on the case's entry, interleaved (ms)."""
    folder = str(CORPUS / case["id"])
    target = ["-m", case["module"]] if case.get("module") else [case["entry"]]
    check = [*LAUNCHER, "check", *target]
    compile_ = [PYTHON, "-m", "py_compile", case["entry"]]
    return ours_vs_anchor(lambda: timed(check, folder, env, (0, 2)), lambda: timed(compile_, folder, env, (0,)), runs)


def measure(runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="launcher-bench-pycache-") as pycache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = pycache
        return measure_with(runs, env)


def measure_with(runs: int, env: dict[str, str]) -> dict[str, Any]:
    rows = []
    for n, case in enumerate(load_cases(), 1):
        print(f"  preflight corpus: {n} {case['id']}", file=sys.stderr, flush=True)
        check, anchor = command_ms(case, runs, env)
        rows.append({
            "id": case["id"],
            "mistakes": len(case["mistakes"]),
            "runs_on_linux": case["runs_on_linux"],
            "verdicts": {judged: verdicts(case, judged) for judged in JUDGEMENTS},
            "in_process_ms": statistics.median(in_process_ms(case, runs)),
            "check_ms": statistics.median(check),
            "py_compile_ms": statistics.median(anchor),
        })
    return {"cases": rows, "runs": runs, "recall_target": RECALL_TARGET, "ms_target": MS_TARGET,
            "scores": {judged: scores(rows, judged) for judged in JUDGEMENTS}, "time": times(rows)}


def scores(rows: list[dict[str, Any]], judged: str) -> dict[str, Any]:
    with_mistake = [r for r in rows if r["verdicts"][judged]["mistakes"]]
    clean = [r for r in rows if not r["mistakes"]]
    good = [r for r in rows if r["runs_on_linux"]]
    return {
        "mistake_scripts": len(with_mistake),
        "caught": sum(bool(r["verdicts"][judged]["caught"]) for r in with_mistake),
        "exact": sum(bool(r["verdicts"][judged]["exact"]) for r in with_mistake),
        "missed": [r["id"] for r in with_mistake if not r["verdicts"][judged]["caught"]],
        "clean_scripts": len(clean),
        "clean_with_findings": [r["id"] for r in clean if r["verdicts"][judged]["findings"]],
        "clean_findings": sum(len(r["verdicts"][judged]["findings"]) for r in clean),
        "linux_correct": len(good),
        "blocked": [r["id"] for r in good if r["verdicts"][judged]["fails"]] if judged == "linux" else [],
    }


def times(rows: list[dict[str, Any]]) -> dict[str, float]:
    check = statistics.median(r["check_ms"] for r in rows)
    anchor = statistics.median(r["py_compile_ms"] for r in rows)
    return {"in_process_ms": statistics.median(r["in_process_ms"] for r in rows), "check_ms": check,
            "py_compile_ms": anchor, "ratio": ratio(check, anchor),
            "check_max_ms": max(r["check_ms"] for r in rows)}


def render(data: dict[str, Any]) -> str:
    rows = []
    for judged, s in data["scores"].items():
        recall = ratio(s["caught"], s["mistake_scripts"])
        rows.append([judged, f"{s['caught']}/{s['mistake_scripts']} ({recall:.0%})",
                     f"{s['exact']}/{s['mistake_scripts']}", verdict(recall >= data["recall_target"]),
                     f"{len(s['clean_with_findings'])}/{s['clean_scripts']} ({s['clean_findings']} findings)",
                     verdict(not s["clean_with_findings"]),
                     f"{len(s['blocked'])}/{s['linux_correct']}" if judged == "linux" else "-",
                     verdict(not s["blocked"]) if judged == "linux" else ""])
    table = markdown_table(["judged for", "recall (mistake scripts caught)", "exact status", "≥ 90 %",
                            "clean scripts with findings", "none", "FAIL on Linux-correct scripts", "none"], rows)
    t = data["time"]
    timing = markdown_table(
        ["per file (median over files)", "in-process check (ms)", "launcher check (ms)", "py_compile (ms)",
         "ratio", "target", ""],
        [["all cases", f"{t['in_process_ms']:.1f}", f"{t['check_ms']:.0f} (max {t['check_max_ms']:.0f})",
          f"{t['py_compile_ms']:.0f}", f"{t['ratio']:.2f}x", f"< {data['ms_target']:.0f} ms",
          verdict(t["check_ms"] < data["ms_target"])]])
    lists = []
    for judged, s in data["scores"].items():
        lists.append(f"{judged}: missed {', '.join(s['missed']) or '-'}; findings on clean "
                     f"{', '.join(s['clean_with_findings']) or '-'}"
                     + (f"; blocked {', '.join(s['blocked']) or '-'}" if judged == "linux" else ""))
    head = (f"Preflight on {len(data['cases'])} corpus scripts ({data['runs']} timed runs per file, one warm-up "
            "dropped; launcher check and py_compile interleaved, wall time including the interpreter start).")
    return f"{head}\n\n{table}\n\n{timing}\n\n" + "\n".join(lists)


def main(argv: Sequence[str] | None = None) -> int:
    return run_benchmark_main(NAME, __doc__.splitlines()[0], measure, render, argv)


if __name__ == "__main__":
    sys.exit(main())
