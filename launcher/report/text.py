"""The summary as about ten aligned lines: a label column, then what it says. Never imports torch."""

from __future__ import annotations

from pathlib import Path

from launcher.report.records import Event
from launcher.report.summary import SHOWN_RANKS, RankSummary, Summary

_LABEL = 12  # width of the label column
_SHOWN_EVENTS = 3
BENCH_HINT = "raise data.num_workers; measure with python -m launcher bench-data JOB.yaml"

EVEN_PACE = 0.02  # a slowest rank this close to the mean, never named in world.jsonl, is not one


def render_summary(summary: Summary, folder: Path, picture: Path) -> str:
    head = [_duration(summary.length), f"{len(summary.ranks)} rank{'s' * (len(summary.ranks) > 1)}",
            f"{summary.attempts} attempt{'s' * (summary.attempts > 1)}"]
    head += [f"exit code {summary.exit_code}"] if summary.exit_code is not None else []
    lines = [labelled("run", f"{folder}: {', '.join(head)}"), *_rank_table(summary)]
    slowest = summary.slowest()
    if slowest is not None:
        rank, ratio = slowest
        named = summary.world_slowest.count(rank.rank)
        seen = f" (named the slowest in {named} of {len(summary.world_slowest)} intervals)" \
            if summary.world_slowest else ""
        if 1 - ratio < EVEN_PACE and not named:
            lines.append(labelled("slowest", f"none: every rank within {EVEN_PACE:.0%} of the mean"))
        else:
            lines.append(labelled("slowest", f"rank {rank.rank}, {1 - ratio:.0%} below the mean{seen}"))
    starved = summary.starved()
    if starved is not None:
        lines.append(labelled("hint", f"rank {starved.rank} waits for data {starved.data_wait:.0%} of the time: "
                                   f"{BENCH_HINT}"))
    restarts = [f"at {_duration(time)}" + (f": {why}" if why else "") for time, why in summary.restarts]
    lines.append(labelled("restarts", f"{len(restarts)}, {_few(restarts)}" if restarts else "0"))
    if summary.failures:
        lines.append(labelled("failures", _few([_failure(summary, event) for event in summary.failures])))
    if summary.metrics:
        values = [f"{name} {first:.4g} -> {last:.4g}" if first != last else f"{name} {last:.4g}"
                  for name, (first, last) in summary.metrics.items()]
        lines.append(labelled("metrics", f"rank {summary.ranks[0].rank}: {', '.join(values)}"))
    lines.append(labelled("plot", str(picture)))
    return "\n".join(lines)


def labelled(label: str, text: str) -> str:
    return f"{label.ljust(_LABEL)}{text}"


def _rank_table(summary: Summary) -> list[str]:
    """One row per rank (a large world: its slowest ranks and its fastest), then the total."""
    ranks = list(summary.ranks)
    if len(ranks) > SHOWN_RANKS:
        by_speed = sorted(ranks, key=lambda rank: rank.throughput)
        ranks = sorted(by_speed[:SHOWN_RANKS - 2] + by_speed[-1:], key=lambda rank: rank.rank)
    workers = any(rank.peak_workers_rss for rank in summary.ranks)
    gpu = any(rank.peak_gpu is not None for rank in summary.ranks)
    header = [summary.unit, "data wait", "peak RSS"] + ["workers RSS"] * workers + ["peak GPU"] * gpu
    rows = [["", *header]] + [[f"rank {rank.rank}", *_cells(rank, workers, gpu)] for rank in ranks]
    if len(ranks) < len(summary.ranks):
        rows.append([f"({len(summary.ranks) - len(ranks)} more ranks, between these speeds)"])
    rows.append(["all ranks", f"{summary.total:.1f}"])
    widths = [max(len(row[i]) for row in rows if len(row) > i and len(row) > 1) for i in range(len(header) + 1)]
    return [(row[0].ljust(_LABEL) + "  ".join(cell.rjust(widths[i + 1]) for i, cell in enumerate(row[1:])))
            .rstrip() for row in rows]


def _cells(rank: RankSummary, workers: bool, gpu: bool) -> list[str]:
    cells = [f"{rank.throughput:.1f}", f"{rank.data_wait:.0%}", _size(rank.peak_rss)]
    cells += [_size(rank.peak_workers_rss)] * workers
    if gpu:
        cells.append("-" if rank.peak_gpu is None else f"{_size(rank.peak_gpu)} of {_size(rank.gpu_total or 0)}")
    return cells


def _failure(summary: Summary, event: Event) -> str:
    fields = event.fields
    who = f"rank {fields['rank']}" if isinstance(fields.get("rank"), int) else "a rank"
    what = [f"exit code {fields['exit_code']}"] if isinstance(fields.get("exit_code"), int) else []
    what += [f"idle {_duration(float(fields['idle']))}"] if isinstance(fields.get("idle"), (int, float)) else []
    what += [str(fields["message"]).splitlines()[0]] if fields.get("message") else []
    kind = "hung" if event.name == "hang" else "failed"
    return f"{who} {kind} at {_duration(event.time - summary.start)}" + (f": {', '.join(what)}" if what else "")


def _few(items: list[str]) -> str:
    shown = "; ".join(items[:_SHOWN_EVENTS])
    return shown + (f"; and {len(items) - _SHOWN_EVENTS} more" if len(items) > _SHOWN_EVENTS else "")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"
