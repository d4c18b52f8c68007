"""The run's records as TensorBoard scalars: one series per rank and field, ``rank<R>/<field>``.

Written with ``tensorboard.summary.Writer`` (no torch, no TensorFlow). A series' step is the record's number
in its rank's file (one per interval), so that a restart never goes back in steps, which would make
TensorBoard drop the points after it; the training step is a series of its own (``rank<R>/step``). Each point
keeps the record's wall time. Never imports torch.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from launcher.errors import MissingPackage, UsageError
from launcher.report.records import Record, RunRecords


def require_tensorboard() -> None:
    """A ``MissingPackage`` error with the pip command when tensorboard's writer cannot be imported."""
    try:
        import tensorboard.summary  # noqa: F401
    except ImportError:
        raise MissingPackage("tensorboard is not installed: --tensorboard writes its event files",
                             "pip install tensorboard") from None


def write_scalars(run: RunRecords, folder: Path) -> int:
    """Write the event files into ``folder``; returns the number of series."""
    require_tensorboard()
    from tensorboard.summary import Writer

    tags: set[str] = set()
    try:
        writer = Writer(str(folder))
        try:
            for rank, records in run.ranks.items():
                for number, record in enumerate(records):
                    for field, value in record_fields(record):
                        tags.add(f"rank{rank}/{field}")
                        writer.add_scalar(f"rank{rank}/{field}", value, number, wall_time=record.time)
        finally:
            writer.close()
    except OSError as e:
        raise UsageError(f"{folder}: cannot be written: {e.strerror}", "choose another --tensorboard folder") from None
    return len(tags)


def record_fields(record: Record) -> Iterator[tuple[str, float]]:
    """The record's numbers by series name; the user's metrics under ``metrics/``."""
    yield from (("attempt", record.attempt), ("step", record.step), ("samples", record.samples),
                ("steps_per_s", record.steps_per_s), ("samples_per_s", record.samples_per_s),
                ("data_wait", record.data_wait), ("rss_bytes", record.rss_bytes),
                ("children_rss_bytes", record.children_rss_bytes))
    if record.gpu_used_bytes is not None:
        yield "gpu_memory_used_bytes", record.gpu_used_bytes
    yield from ((f"metrics/{name}", value) for name, value in record.metrics.items())
