"""Measure DataLoader settings on a dataset and pick the fastest: the engine of ``launcher bench-data``.

For a dataset made by a ``module:factory`` function and the job's batch size,
it times passes of ``--batches`` batches over a grid of ``num_workers``,
``pin_memory`` (only where CUDA exists), ``prefetch_factor`` and
``persistent_workers`` with ``torch.utils.benchmark``. Repeats are interleaved
(every setting once per round, in a shuffled order, so slow drifts of the
machine hit all settings alike), the first round is dropped as a warm-up, and
medians are compared. A non-persistent setting pays for starting its workers
in every pass (as it does every epoch); a persistent one is warmed up first.

By default the sweep is staged: ``num_workers`` first (persistent workers,
prefetch 2), then prefetch and persistence at the best worker count, where
the stage-1 winner is measured again beside its variants. ``--full`` measures
the whole grid in one interleaved run.

The command (``launcher.cli.bench_data``) writes the best setting into the job
file with ``launcher.config.edit``.

Launch side. torch is imported inside the functions that need it.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from launcher.hostinfo import usable_cpus

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class LoaderSetting:
    """One point of the sweep. ``pin_memory=None``: not measured (the job keeps ``auto``)."""

    num_workers: int
    prefetch_factor: int | None = None  # None with num_workers == 0
    persistent_workers: bool = False
    pin_memory: bool | None = None

    def label(self) -> str:
        parts = [f"num_workers={self.num_workers}"]
        if self.num_workers > 0:
            parts += [
                f"prefetch_factor={self.prefetch_factor}",
                f"persistent_workers={self.persistent_workers}",
            ]
        if self.pin_memory is not None:
            parts.append(f"pin_memory={self.pin_memory}")
        return " ".join(parts)

    def loader_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"num_workers": self.num_workers, "pin_memory": bool(self.pin_memory)}
        if self.num_workers > 0:
            kwargs.update(prefetch_factor=self.prefetch_factor, persistent_workers=self.persistent_workers)
        return kwargs

    def data_values(self) -> dict[str, Any]:
        """The ``data:`` keys this setting decides (worker-only keys only with workers)."""
        values: dict[str, Any] = {"num_workers": self.num_workers}
        if self.num_workers > 0:
            values.update(prefetch_factor=self.prefetch_factor, persistent_workers=self.persistent_workers)
        if self.pin_memory is not None:
            values["pin_memory"] = self.pin_memory
        return values


@dataclass(frozen=True)
class SettingResult:
    setting: LoaderSetting
    batches_per_second: float  # median over the kept runs
    latency_ms: float  # median time to the next batch, over all batches of the kept runs


@dataclass(frozen=True)
class SweepResult:
    results: tuple[SettingResult, ...]  # fastest first
    best: SettingResult
    baseline: SettingResult | None  # num_workers=0, if measured

    @property
    def speedup(self) -> float | None:
        """The best setting's throughput over ``num_workers=0``."""
        return self.best.batches_per_second / self.baseline.batches_per_second if self.baseline else None


def default_workers(cpus: int) -> list[int]:
    """0, powers of two and the CPU count, up to 8 x CPUs (at most 32): the auto rule's range."""
    top = min(8 * cpus, 32)
    candidates = {0, cpus, *(2**i for i in range(6))}
    return sorted(w for w in candidates if w <= top)


def grid(
    workers: Sequence[int], prefetch: Sequence[int], persistent: Sequence[bool], pin: Sequence[bool | None]
) -> list[LoaderSetting]:
    """Every combination; ``num_workers=0`` once per pin value (the other keys do not apply)."""
    out: list[LoaderSetting] = []
    for w in workers:
        for p in pin:
            if w == 0:
                out.append(LoaderSetting(0, None, False, p))
                continue
            out += [LoaderSetting(w, f, keep, p) for f in prefetch for keep in persistent]
    return list(dict.fromkeys(out))


def _timed_pass(loader: Any, persistent: bool) -> tuple[float, list[float]]:
    """Seconds for one epoch of ``loader`` (worker start-up included unless persistent), batch latencies."""
    if persistent:
        next(iter(loader))  # start the workers outside the timing
        iterator = iter(loader)  # rewinds them, waiting for the warm-up's batches still in flight
        start = time.perf_counter()
    else:
        start = time.perf_counter()
        iterator = iter(loader)
    latencies = []
    while True:
        before = time.perf_counter()
        try:
            next(iterator)
        except StopIteration:
            break
        latencies.append(time.perf_counter() - before)
    del iterator  # non-persistent workers stop here, inside the timing, as at every epoch's end
    return time.perf_counter() - start, latencies


def _make_loader(dataset: Any, setting: LoaderSetting, batch_size: int, batches: int) -> Any:
    """A loader over ``batches`` full batches of ``dataset``: each timed pass is one whole epoch."""
    import torch
    from torch.utils.data import DataLoader, IterableDataset, Subset

    generator = torch.Generator()
    generator.manual_seed(0)
    stream = isinstance(dataset, IterableDataset)  # read whole, in order: it has no indices
    wanted = batches * batch_size
    if not stream and len(dataset) > wanted:  # spread over the dataset, not its first items only
        dataset = Subset(dataset, torch.randperm(len(dataset), generator=generator)[:wanted].tolist())
    kwargs = setting.loader_kwargs()
    return DataLoader(dataset, batch_size=batch_size, shuffle=not stream, generator=generator, **kwargs)


def measure(
    dataset: Any,
    settings: Sequence[LoaderSetting],
    *,
    batch_size: int,
    batches: int,
    repeats: int,
    progress: Progress | None = None,
    seed: int = 0,
) -> tuple[SettingResult, ...]:
    """Interleaved timings: ``repeats + 1`` rounds over all settings, the first dropped. Fastest first.

    Each pass is timed once (``Timer.timeit`` would run it twice more as a warm-up, restarting
    workers); ``torch.utils.benchmark.Measurement`` merges the kept runs and gives their median.
    """
    from torch.utils import benchmark

    order = list(settings)
    shuffler = random.Random(seed)
    measurements: dict[LoaderSetting, list[Any]] = {s: [] for s in order}
    latencies: dict[LoaderSetting, list[float]] = {s: [] for s in order}
    with warnings.catch_warnings():
        # The sweep oversubscribes CPUs on purpose; torch's warning would repeat for every pass.
        warnings.filterwarnings("ignore", message="This DataLoader will create")
        _rounds(dataset, order, batch_size, batches, repeats, shuffler, measurements, latencies, progress)
    results = []
    for setting in settings:
        merged = benchmark.Measurement.merge(measurements[setting])[0]
        per_run = len(latencies[setting]) // max(1, repeats) or batches  # batches in each kept pass
        results.append(
            SettingResult(
                setting=setting,
                batches_per_second=per_run / merged.median,
                latency_ms=statistics.median(latencies[setting]) * 1e3
                if latencies[setting]
                else float("nan"),
            )
        )
    return tuple(sorted(results, key=lambda r: -r.batches_per_second))


def _rounds(
    dataset: Any,
    order: list[LoaderSetting],
    batch_size: int,
    batches: int,
    repeats: int,
    shuffler: random.Random,
    measurements: dict[LoaderSetting, list[Any]],
    latencies: dict[LoaderSetting, list[float]],
    progress: Progress | None,
) -> None:
    import torch
    from torch.utils import benchmark

    total, done = (repeats + 1) * len(order), 0
    threads = torch.get_num_threads()
    for round_index in range(repeats + 1):
        shuffler.shuffle(order)
        for setting in order:
            loader = _make_loader(dataset, setting, batch_size, batches)
            seconds, lat = _timed_pass(loader, setting.num_workers > 0 and setting.persistent_workers)
            del loader
            if round_index > 0:
                spec = benchmark.TaskSpec(
                    stmt="drain(loader)",
                    setup="",
                    label="bench-data",
                    sub_label=setting.label(),
                    num_threads=threads,
                )
                measurements[setting].append(benchmark.Measurement(1, [seconds], spec))
                latencies[setting] += lat
            done += 1
            if progress is not None:
                progress(done, total, setting.label())


def run_sweep(
    dataset: Any,
    *,
    batch_size: int,
    workers: Sequence[int] | None = None,
    prefetch: Sequence[int] = (2, 4),
    persistent: Sequence[bool] = (False, True),
    pin: Sequence[bool | None] | None = None,
    batches: int = 20,
    repeats: int = 5,
    full: bool = False,
    progress: Progress | None = None,
) -> SweepResult:
    """Measure the grid (staged unless ``full``; see the module docstring) and pick the fastest."""
    import torch

    workers = list(workers) if workers is not None else default_workers(usable_cpus())
    if pin is None:
        pin = (False, True) if torch.cuda.is_available() else (None,)
    kw: dict[str, Any] = {
        "batch_size": batch_size,
        "batches": batches,
        "repeats": repeats,
        "progress": progress,
    }
    if full:
        results = measure(dataset, grid(workers, prefetch, persistent, pin), **kw)
        return _summary(results, results)
    first = measure(dataset, grid(workers, prefetch[:1], [persistent[-1]], pin[:1]), **kw)
    winner = first[0].setting
    if winner.num_workers == 0:
        return _summary(first, first)
    second = measure(dataset, grid([winner.num_workers], prefetch, persistent, pin), **kw)
    return _summary(second, first)


def _summary(final: tuple[SettingResult, ...], first: tuple[SettingResult, ...]) -> SweepResult:
    baseline = next((r for r in first if r.setting.num_workers == 0), None)
    seen = {r.setting for r in final}
    results = tuple(
        sorted(final + tuple(r for r in first if r.setting not in seen), key=lambda r: -r.batches_per_second)
    )
    return SweepResult(results=results, best=final[0], baseline=baseline)


def render_table(result: SweepResult) -> str:
    """A markdown table, fastest first, with the speed-up over ``num_workers=0``."""
    base = result.baseline.batches_per_second if result.baseline else None
    lines = ["| setting | batches/s | latency ms | vs num_workers=0 |", "|---|---:|---:|---:|"]
    for r in result.results:
        ratio = f"{r.batches_per_second / base:.2f}x" if base else "-"
        mark = " (best)" if r is result.best else ""
        lines.append(
            f"| {r.setting.label()}{mark} | {r.batches_per_second:.1f} | {r.latency_ms:.2f} | {ratio} |"
        )
    return "\n".join(lines)


def stderr_progress(done: int, total: int, label: str) -> None:
    """One line per round (or a rewritten line on a terminal)."""
    if sys.stderr.isatty():
        print(f"\rbench-data: {done}/{total} {label:<70}", end="" if done < total else "\n", file=sys.stderr)
    elif done == total or done % -(-total // 10) == 0:
        print(f"bench-data: {done}/{total} runs", file=sys.stderr)
