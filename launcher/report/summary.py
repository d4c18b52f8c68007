"""What a run directory says in numbers, and those numbers as a short aligned text.

Rates and shares are means over time (each record weighted by its interval), so a short last record counts
for what it measured. Never imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from launcher.report.records import Event, Record, RunRecords

STARVED_SHARE = 0.2  # above it, the summary says how to feed the rank faster
SHOWN_RANKS = 8  # a larger world shows its slowest ranks and its fastest


@dataclass(frozen=True)
class RankSummary:
    rank: int
    throughput: float  # mean samples/s (steps/s when the run counted no samples)
    data_wait: float  # share of the time spent waiting for data
    peak_rss: int
    peak_workers_rss: int  # the rank's children (DataLoader workers)
    peak_gpu: int | None  # device memory in use (NVML, device-wide); None on CPU
    gpu_total: int | None


@dataclass(frozen=True)
class Summary:
    length: float  # seconds
    attempts: int
    unit: str  # "samples/s" or "steps/s"
    ranks: tuple[RankSummary, ...]
    world_slowest: tuple[int | None, ...]  # world.jsonl: the rank named slowest in each interval
    restarts: tuple[tuple[float, str], ...]  # seconds since the start, why
    failures: tuple[Event, ...]  # failure and hang events
    metrics: dict[str, tuple[float, float]]  # the lowest rank's user metrics: first and last value
    start: float
    exit_code: int | None  # run.json's, once the run ended

    @property
    def total(self) -> float:
        return sum(rank.throughput for rank in self.ranks)

    def slowest(self) -> tuple[RankSummary, float] | None:
        """The slowest rank and its throughput over the mean; None for one rank or an idle run."""
        mean = self.total / len(self.ranks)
        if len(self.ranks) < 2 or mean <= 0:
            return None
        slowest = min(self.ranks, key=lambda rank: rank.throughput)
        return slowest, slowest.throughput / mean

    def starved(self) -> RankSummary | None:
        """The rank that waited for data the longest, when it did so more than STARVED_SHARE of the time."""
        rank = max(self.ranks, key=lambda rank: rank.data_wait)
        return rank if rank.data_wait > STARVED_SHARE else None


def counts_samples(run: RunRecords) -> bool:
    """Whether the run counted samples (else its throughput is in steps)."""
    return any(record.samples > 0 for record in run.records())


def run_start(run: RunRecords) -> float:
    """When the run began: its first monitor's start, or the launcher's start event if earlier."""
    starts = [records[0].time - records[0].elapsed for records in run.ranks.values()]
    return min(starts + [event.time for event in run.events if event.name == "start"])


def restart_marks(run: RunRecords) -> tuple[tuple[float, str], ...]:
    """Each restart: seconds from the start, and why (events.jsonl's restarts; without them, where the records'
    attempt changes, with no reason)."""
    start = run_start(run)
    events = [event for event in run.events if event.name == "restart"]
    if events:
        return tuple((event.time - start, _text(event.fields.get("why"))) for event in events)
    firsts: dict[int, float] = {}
    for record in run.records():
        firsts[record.attempt] = min(firsts.get(record.attempt, record.time), record.time)
    return tuple((firsts[attempt] - start, "") for attempt in sorted(firsts)[1:])


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def summarize(run: RunRecords) -> Summary:
    samples = counts_samples(run)
    start = run_start(run)
    end = max([record.time for record in run.records()] + [event.time for event in run.events])
    wall = run.info.get("wall_time")
    first = run.ranks[min(run.ranks)]
    return Summary(
        length=float(wall) if isinstance(wall, (int, float)) else end - start,
        attempts=len({record.attempt for record in run.records()}),
        unit="samples/s" if samples else "steps/s",
        ranks=tuple(_rank_summary(rank, records, samples) for rank, records in run.ranks.items()),
        world_slowest=run.slowest,
        restarts=restart_marks(run),
        failures=tuple(event for event in run.events if event.name in ("failure", "hang")),
        metrics={name: (next(r.metrics[name] for r in first if name in r.metrics), last)
                 for name, last in _last_metrics(first).items()},
        start=start, exit_code=exit_code if isinstance(exit_code := run.info.get("exit_code"), int) else None,
    )


def _rank_summary(rank: int, records: Sequence[Record], samples: bool) -> RankSummary:
    time = sum(record.interval for record in records) or 1.0
    gpus = [record for record in records if record.gpu_used_bytes is not None]
    return RankSummary(
        rank=rank,
        throughput=sum((r.samples_per_s if samples else r.steps_per_s) * r.interval for r in records) / time,
        data_wait=sum(record.data_wait * record.interval for record in records) / time,
        peak_rss=max(record.rss_bytes for record in records),
        peak_workers_rss=max(record.children_rss_bytes for record in records),
        peak_gpu=max(r.gpu_used_bytes or 0 for r in gpus) if gpus else None,
        gpu_total=max(r.gpu_total_bytes or 0 for r in gpus) if gpus else None,
    )


def _last_metrics(records: Sequence[Record]) -> dict[str, float]:
    last: dict[str, float] = {}
    for record in records:
        last.update(record.metrics)
    return last
