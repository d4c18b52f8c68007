"""The run as a picture: panels over time for throughput, the user's metrics, data wait and memory, per rank.

matplotlib is imported here only, when a picture is asked for, and drawn without pyplot (no global state, no
display). Restarts are dashed vertical lines; a rank's attempts are separate segments. Never imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from launcher.errors import MissingPackage, UsageError
from launcher.report.records import Record, RunRecords
from launcher.report.summary import counts_samples, restart_marks, run_start

if TYPE_CHECKING:
    from matplotlib.axes import Axes

METRIC_PANELS = 4  # the user's metrics beyond these are left out of the picture
LEGEND_RANKS = 8  # a larger world is drawn without a legend
_GIB = 1024**3
Value = Callable[[Record], float | None]
Line = tuple[Value, str, str]  # a rank's value, its line style, what its legend adds to "rank R"


def require_matplotlib() -> None:
    """A ``MissingPackage`` error with the pip command when matplotlib cannot be imported."""
    try:
        import matplotlib.figure  # noqa: F401
    except ImportError:
        raise MissingPackage("matplotlib is not installed: launcher report draws with it",
                             "pip install 'launcher[report]' or pip install matplotlib") from None


def draw_run(run: RunRecords, path: Path) -> None:
    """Write the run's picture as a PNG to ``path``."""
    require_matplotlib()
    from matplotlib.figure import Figure

    start = run_start(run)
    rate: Value = (lambda r: r.samples_per_s) if counts_samples(run) else (lambda r: r.steps_per_s)
    gpu = any(record.gpu_used_bytes is not None for record in run.records())
    memory: list[Line] = [(lambda r: r.rss_bytes / _GIB, "-", "")] + [(_gpu_gib, ":", " GPU")] * gpu
    names = sorted({name for record in run.records() for name in record.metrics})[:METRIC_PANELS]
    panels: list[tuple[str, list[Line], bool]] = [  # label, its lines per rank, whether its axis starts at 0
        ("samples/s" if counts_samples(run) else "steps/s", [(rate, "-", "")], True),
        *((name, [(_metric(name), "-", "")], False) for name in names),
        ("data wait (%)", [(lambda r: 100 * r.data_wait, "-", "")], True),
        ("memory (GiB)" if gpu else "RSS (GiB)", memory, False),
    ]
    figure = Figure(figsize=(10, 0.8 + 2.2 * len(panels)), layout="constrained")
    axes: list[Axes] = list(figure.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0])
    for (label, lines, from_zero), ax in zip(panels, axes, strict=True):
        for index, (rank, records) in enumerate(run.ranks.items()):
            for value, style, suffix in lines:
                times, values = _series(records, value, start)
                ax.plot(times, values, color=f"C{index % 10}", linewidth=1.2, linestyle=style,
                        label=f"rank {rank}{suffix}")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if from_zero:
            ax.set_ylim(bottom=0)
        for number, (time, _) in enumerate(restart_marks(run)):
            ax.axvline(time, color="0.35", linestyle="--", linewidth=1, label="restart" if number == 0 else None)
    if len(run.ranks) <= LEGEND_RANKS:
        axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
        if gpu:
            axes[-1].legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    axes[-1].set_xlabel("seconds since the start")
    figure.suptitle(f"{run.folder.name}: {len(run.ranks)} rank{'s' * (len(run.ranks) > 1)}")
    try:
        figure.savefig(path, format="png", dpi=100)
    except OSError as e:
        raise UsageError(f"{path}: cannot be written: {e.strerror}", "choose another place with --output") from None


def _series(records: Sequence[Record], value: Value, start: float) -> tuple[list[float], list[float]]:
    """Times and values; a gap (NaN) between attempts, so that no line joins the end of one to the next."""
    times: list[float] = []
    values: list[float] = []
    for number, record in enumerate(records):
        if number and records[number - 1].attempt != record.attempt:
            times.append(math.nan)
            values.append(math.nan)
        point = value(record)
        times.append(record.time - start)
        values.append(math.nan if point is None else point)
    return times, values


def _metric(name: str) -> Value:
    return lambda record: record.metrics.get(name)


def _gpu_gib(record: Record) -> float | None:
    return None if record.gpu_used_bytes is None else record.gpu_used_bytes / _GIB
