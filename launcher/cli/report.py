"""``launcher report RUN_DIR``: a run directory as a picture (PNG), a short summary and, if asked, TensorBoard scalars.

Offline: reads the files that a run left (docs/monitoring.md). Never imports torch.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from launcher.cli.flags import UsageParser
from launcher.errors import EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = UsageParser(prog="launcher report", allow_abbrev=False,
                         usage="python -m launcher report RUN_DIR [--output PNG] [--tensorboard DIR]",
                         description="Draw a run directory's metrics (throughput, your metrics, data wait, memory "
                                     "per rank over time) and print a short summary.")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run directory that the end of the run printed")
    parser.add_argument("-o", "--output", metavar="PNG", help="where the picture goes (default: RUN_DIR/report.png)")
    parser.add_argument("--tensorboard", metavar="DIR",
                        help="also write the records as TensorBoard scalars into DIR (needs pip install tensorboard)")
    return parser


def main(argv: Sequence[str]) -> int:
    """Read, draw, export, then print the summary; a missing package stops it first. Raises LauncherError."""
    from launcher.report.plot import draw_run, require_matplotlib
    from launcher.report.records import read_run
    from launcher.report.scalars import require_tensorboard, write_scalars
    from launcher.report.summary import summarize
    from launcher.report.text import labelled, render_summary

    args = build_parser().parse_args(list(argv))
    require_matplotlib()
    if args.tensorboard:
        require_tensorboard()
    folder = Path(args.run_dir)
    run = read_run(folder)
    picture = Path(args.output) if args.output else folder / "report.png"
    draw_run(run, picture)
    lines = [render_summary(summarize(run), folder, picture)]
    if args.tensorboard:
        series = write_scalars(run, Path(args.tensorboard))
        lines.append(labelled("tensorboard", f"{series} series in {args.tensorboard}"))
    print("\n".join(lines))
    return EXIT_OK
