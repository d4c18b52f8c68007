"""Every benchmark of the project from one command: ``python -m benchmarks.run_all [--quick]``.

Runs each ``benchmarks/<name>.py`` that defines ``main`` in its own process, in
a fixed order (the known ones first, then any other), prints its tables, and
collects them with the machine and the date in a markdown report. A benchmark
whose ``main(argv)`` takes arguments gets the common options (``--runs``,
``--quick``, ``--json``, ``--launcher-path``); one whose ``main()`` takes none
runs with its own defaults. Known benchmarks missing from this checkout are
skipped with a note.
"""

from __future__ import annotations

import ast
import datetime
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import (
    BENCH_DIR,
    PYTHON,
    RESULTS_DIR,
    describe_machine,
    machine,
    markdown_table,
    parser,
    prepare,
)

ORDER = ("launch_overhead", "memory", "failure_latency", "data_loading", "launch_profile", "output_path",
         "checkpoint_stall")
NOT_BENCHMARKS = {"__init__", "common", "run_all"}


def benchmark_names() -> list[str]:
    """The known benchmarks in order, then any other module of benchmarks/ that defines main."""
    others = sorted(p.stem for p in BENCH_DIR.glob("*.py")
                    if p.stem not in NOT_BENCHMARKS and p.stem not in ORDER and not p.stem.startswith("_"))
    return [*ORDER, *(name for name in others if main_arity(BENCH_DIR / f"{name}.py") is not None)]


def main_arity(path: Path) -> int | None:
    """How many positional parameters the module's ``main`` takes; None without a ``main``. Not imported."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef) and node.name == "main":
            return len(node.args.args)
    return None


def run_benchmark(name: str, options: list[str], results: Path) -> tuple[str, float, str, str]:
    """(status, seconds, note, stdout) of one benchmark run in its own process."""
    path = BENCH_DIR / f"{name}.py"
    if not path.exists():
        return "skipped", 0.0, "not in this checkout", ""
    arity = main_arity(path)
    if arity is None:
        return "skipped", 0.0, "no main()", ""
    argv = [*options, "--json", str(results / f"{name}.json")] if arity else []
    note = "" if arity else "main() takes no argv: ran with its own defaults"
    print(f"\n## {name}\n", flush=True)
    started = time.monotonic()
    with subprocess.Popen([PYTHON, "-m", f"benchmarks.{name}", *argv], cwd=BENCH_DIR.parent,
                          stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            lines.append(line)
    seconds = time.monotonic() - started
    return ("ok" if proc.returncode == 0 else f"failed ({proc.returncode})"), seconds, note, "".join(lines)


def report(sections: list[tuple[str, str]], rows: list[list[str]], argv: Sequence[str]) -> str:
    """The markdown report: command, date, machine, each benchmark's output, and the run's summary."""
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = " ".join(["python -m benchmarks.run_all", *argv])
    head = ["# Benchmark results", "", f"- Command (from the repository root): `{command}`",
            f"- Date: {when}", f"- Machine: {describe_machine(machine())}", ""]
    body = [f"## {name}\n\n{text.strip()}\n" for name, text in sections]
    tail = ["## Run", "", markdown_table(["benchmark", "status", "seconds", "note"], rows)]
    return "\n".join(head + body + tail) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks")
    p.add_argument("--skip", nargs="+", metavar="NAME", default=[], help="do not run these benchmarks")
    p.add_argument("--results", metavar="DIR", default=str(RESULTS_DIR), help="where the JSON files go")
    p.add_argument("--report", metavar="PATH", help="markdown report (default RESULTS/report.md)")
    args = p.parse_args(argv)
    runs = prepare(args)
    options = ["--quick"] if args.quick else ["--runs", str(runs)]
    if args.launcher_path:
        options += ["--launcher-path", args.launcher_path]
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    names = [n for n in benchmark_names() if (not args.only or n in args.only) and n not in args.skip]
    rows, sections = [], []
    for name in names:
        status, seconds, note, output = run_benchmark(name, options, results)
        rows.append([name, status, f"{seconds:.0f}", note])
        if output:
            kept = [line for line in output.splitlines() if not line.startswith("JSON: ")]
            sections.append((name, "\n".join(kept)))
    summary = markdown_table(["benchmark", "status", "seconds", "note"], rows)
    print(f"\n## Run\n\n{summary}")
    path = Path(args.report) if args.report else results / "report.md"
    path.write_text(report(sections, rows, argv))
    print(f"\nReport: {path}")
    return 0 if all(r[1] in ("ok", "skipped") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
