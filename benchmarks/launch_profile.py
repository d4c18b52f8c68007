"""Where the launch time goes: a timeline of the trivial job under our launcher, torchrun's beside it.

Both sides run as users run them (``python -m launcher --nprocs N trivial.py``,
torchrun ``--standalone``) with ``LAUNCHER_TRACE_DIR`` set: the launcher, its
forkserver, the agent and the workers write the marks placed in the product
(``launcher/trace.py``, ``trace.mark`` under ``launcher/``), and the job script
marks its own steps in the same format (``jobs/trivial.py``). torchrun's side has
only the job's marks. Offsets are ms since the command was started; medians over
the measured runs (first dropped, interleaved).

No longer measured, as the product has no mark to bound them: starting the
forkserver and its resource tracker as a phase of its own (one mark, at the
request: its few ms now fall in "config, plan, preflight" and in the server's
interpreter start); the agent's last ``_monitor_workers`` call (its phases now
end when every return value is in, and elastic's collecting them counts with
the exit barrier); and the old timeline's extra events (the profiled script's
first line, elastic's ``start_processes``, each ``Process.start``, the agent's
log setup, the server's stop and multiprocessing's exit function timed on their
own).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks.common import (
    LAUNCHER,
    TORCHRUN,
    expect_success,
    finish,
    job,
    markdown_table,
    ours_vs_anchor,
    parser,
    prepare,
    run_job,
)
from launcher.trace import TRACE_DIR_VARIABLE

NAME = "launch_profile"
NPROCS = (2, 4)
START, EXITED, GONE = "harness: command started", "harness: launcher exited", "harness: all processes gone"
F, L = "first", "last"
# (phase, (from event, first/last), (to event, first/last)); per-rank events have a first and a last rank.
# The launcher's chain runs down the table; the server's start and preload run beside it until the agent.
PHASES: tuple[tuple[str, tuple[str, str], tuple[str, str]], ...] = (
    ("python start, import launcher.cli", (START, F), ("launcher: launcher.cli imported", F)),
    ("import the flag parser", ("launcher: launcher.cli imported", F), ("launcher: prepare start", F)),
    ("flags", ("launcher: prepare start", F), ("launcher: start reaper", F)),
    ("start reaper, resource tracker (return at once)", ("launcher: start reaper", F),
     ("launcher: start forkserver", F)),
    ("start forkserver (returns at once), config, plan, preflight", ("launcher: start forkserver", F),
     ("launcher: prepare end", F)),
    ("server: interpreter start", ("launcher: start forkserver", F), ("server: preload starts", F)),
    ("server: preload torch, elastic, launcher", ("server: preload starts", F), ("server: preload done", F)),
    ("preflight verdict → run_plan", ("launcher: prepare end", F), ("launcher: run_plan start", F)),
    ("run_plan: temp dir → agent asked for", ("launcher: run_plan start", F),
     ("launcher: agent process start", F)),
    ("agent: asked for (waits for the preload) → host_agent entered", ("launcher: agent process start", F),
     ("agent: host_agent start", F)),
    ("agent: output router, spec, agent", ("agent: host_agent start", F), ("agent: rendezvous start", F)),
    ("agent: rendezvous", ("agent: rendezvous start", F), ("agent: rendezvous end", F)),
    ("agent: start workers (request → all started)", ("agent: start workers start", F),
     ("agent: start workers end", F)),
    ("worker: fork → bootstrap entered (last rank)", ("agent: start workers start", F),
     ("worker: run_worker start", L)),
    ("worker: bootstrap → job script starts (last rank)", ("worker: run_worker start", L),
     ("job: script start", L)),
    ("job: init_process_group (last rank)", ("job: script start", L), ("job: init_process_group done", L)),
    ("job: all_reduce + destroy (last rank)", ("job: init_process_group done", L), ("job: destroy done", L)),
    ("worker: job done → run_worker returns", ("job: destroy done", L), ("worker: run_worker end", L)),
    ("agent: has every return value", ("worker: run_worker end", L), ("agent: every worker returned", F)),
    ("agent: results collected, exit barrier, run returns", ("agent: every worker returned", F),
     ("agent: run end", F)),
    ("agent: result built and sent", ("agent: run end", F), ("agent: host_agent end", F)),
    ("agent process exits, launcher has its result", ("agent: host_agent end", F),
     ("launcher: agent process end", F)),
    ("stop forkserver, remove temp dirs", ("launcher: agent process end", F),
     ("launcher: run_plan end", F)),
    ("stop reaper, summary", ("launcher: run_plan end", F), ("launcher: main returned", F)),
    ("exit function, os._exit", ("launcher: main returned", F), (EXITED, F)),
    ("launcher exited → all processes gone", (EXITED, F), (GONE, F)),
    ("total", (START, F), (GONE, F)),
)
COMPARED = (("job: script start", F), ("job: script start", L), ("job: init_process_group done", L),
            ("job: destroy done", L), (EXITED, F), (GONE, F))


def marked_run(cmd: Sequence[str]) -> dict[str, list[float]]:
    """Run ``cmd`` once with the trace on; every event's offsets (ms since start), sorted."""
    with tempfile.TemporaryDirectory(prefix="launcher-bench-marks-") as marks:
        run = expect_success(run_job(cmd, env={TRACE_DIR_VARIABLE: marks}), " ".join(cmd))
        start = run.exited_at - run.exit_seconds
        events: dict[str, list[float]] = defaultdict(list)
        for file in Path(marks).glob("marks-*.tsv"):
            for line in file.read_text().splitlines():
                stamp, _, label = line.split("\t", 2)
                events[label].append((float(stamp) - start) * 1000)
    events[START] = [0.0]
    events[EXITED] = [run.exit_seconds * 1000]
    events[GONE] = [run.seconds * 1000]
    return {label: sorted(times) for label, times in events.items()}


def at(events: dict[str, list[float]], point: tuple[str, str]) -> float | None:
    times = events.get(point[0])
    if not times:
        return None
    return times[0] if point[1] == F else times[-1]


def median_at(runs: list[dict[str, list[float]]], point: tuple[str, str]) -> float | None:
    values = [v for r in runs if (v := at(r, point)) is not None]
    return statistics.median(values) if values else None


def phases(runs: list[dict[str, list[float]]]) -> list[dict[str, Any]]:
    rows = []
    for name, begin, end in PHASES:
        spans = [e - b for r in runs if (b := at(r, begin)) is not None and (e := at(r, end)) is not None]
        rows.append({"phase": name, "from": begin, "to": end, "begin_ms": median_at(runs, begin),
                     "ms": statistics.median(spans) if spans else None})
    return rows


def timeline(runs: list[dict[str, list[float]]]) -> list[dict[str, Any]]:
    labels = sorted({label for r in runs for label in r}, key=lambda lb: median_at(runs, (lb, F)) or 0.0)
    return [{"event": label, "first_ms": median_at(runs, (label, F)), "last_ms": median_at(runs, (label, L)),
             "count": statistics.median([len(r.get(label, [])) for r in runs])} for label in labels]


def unseen(runs: list[dict[str, list[float]]]) -> list[str]:
    """The phases' marks that no run wrote: a launcher (``--launcher-path``) that lacks them, or a broken one."""
    wanted = {point[0] for _, begin, end in PHASES for point in (begin, end)}
    return sorted(wanted - {label for r in runs for label in r})


def measure(runs: int) -> list[dict[str, Any]]:
    cases = []
    for nprocs in NPROCS:
        ours = [*LAUNCHER, "--nprocs", str(nprocs), job("trivial.py")]
        anchor = [*TORCHRUN, "--standalone", "--nproc-per-node", str(nprocs), job("trivial.py")]
        kept_ours, kept_anchor = ours_vs_anchor(partial(marked_run, ours), partial(marked_run, anchor), runs,
                                                f"profile x{nprocs}")
        cases.append({
            "nprocs": nprocs, "runs": runs, "ours_command": ours, "anchor_command": anchor,
            "phases": phases(kept_ours), "timeline": timeline(kept_ours), "unseen_marks": unseen(kept_ours),
            "compared": [{"event": f"{label} ({which} rank)" if label.startswith("job") else label,
                          "ours_ms": median_at(kept_ours, (label, which)),
                          "torchrun_ms": median_at(kept_anchor, (label, which))}
                         for label, which in COMPARED],
        })
    return cases


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def render(cases: list[dict[str, Any]]) -> str:
    parts = [f"Launch profile (ours, script entrypoint): medians of {cases[0]['runs']} runs, first dropped; "
             "ms. The launcher never imports torch: the agent and the workers fork from the server that preloaded it."]
    for case in cases:
        rows = [[p["phase"], _ms(p["begin_ms"]), _ms(p["ms"])] for p in case["phases"]]
        table = markdown_table(["phase", "starts at", "takes"], rows)
        parts.append(f"**{case['nprocs']} processes**\n\n{table}")
        if case["unseen_marks"]:
            parts.append("Never marked (their phases read –): " + ", ".join(f"`{m}`" for m in case["unseen_marks"]))
        rows = [[c["event"], _ms(c["ours_ms"]), _ms(c["torchrun_ms"])] for c in case["compared"]]
        parts.append(markdown_table(["job event", "ours (ms from start)", "torchrun (ms from start)"], rows))
    return "\n\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    runs = prepare(args)
    cases = measure(runs)
    print(render(cases))
    return finish(NAME, {"cases": cases}, args, argv)


if __name__ == "__main__":
    sys.exit(main())
