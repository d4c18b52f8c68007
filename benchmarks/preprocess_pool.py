"""Per-sample CPU work: serial vs threads (map_in_threads) vs processes (DataLoader workers), by kind of work.

Each workload prepares every sample of a pass through a DataLoader (batch 16):
serially (``num_workers=0``); with ``launcher.runtime.data.preprocess.map_in_threads``
in the dataset's ``__getitems__`` (``num_workers=0``, N threads); and with N
persistent DataLoader worker processes. N is the number of usable CPUs (at least
2). Workloads of about 1-3 ms a sample: pure-Python arithmetic (holds the GIL),
numpy sort and ufuncs, zlib inflate (both release the GIL), and a PIL JPEG decode
and resize when Pillow is installed. Samples per second, medians of interleaved
passes (one warm-up pass dropped), and the CPU seconds each mode used per wall
second. The guidance of docs/preprocessing.md comes from this table: threads win
where the work releases the GIL, processes where it does not.

    python -m benchmarks.preprocess_pool [--quick] [--runs N] [--json PATH]
"""

from __future__ import annotations

import functools
import io
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import psutil
from torch.utils.data import DataLoader, Dataset

from benchmarks.common import Variant, interleave, markdown_table, ratio, run_benchmark_main, summary
from launcher.hostinfo import usable_cpus
from launcher.runtime.data.preprocess import map_in_threads

NAME = "preprocess_pool"
BATCH = 16
SAMPLES = 192  # per pass


def pure_python(index: int) -> int:
    """Integer arithmetic in the interpreter: holds the GIL throughout."""
    return sum((k * index) % 7 for k in range(25_000))


@functools.cache
def _array() -> np.ndarray:
    return np.random.default_rng(0).random(20_000)


def numpy_work(index: int) -> float:
    """A sort and a few ufuncs over 20k floats: numpy releases the GIL inside each."""
    values = np.sort(_array() * (index + 1))
    return float(np.sqrt(values * values + 1.0).sum())


@functools.cache
def _compressed() -> bytes:
    rng = np.random.default_rng(1)
    return zlib.compress(rng.integers(0, 16, 250_000, dtype=np.uint8).tobytes(), 6)


def zlib_work(index: int) -> int:
    """Inflate a 250 kB payload: zlib releases the GIL while it inflates."""
    return len(zlib.decompress(_compressed())) + index


@functools.cache
def _jpeg() -> bytes:
    from PIL import Image

    pixels = np.random.default_rng(2).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=90)
    return out.getvalue()


def pil_work(index: int) -> int:
    """Decode a 640x480 JPEG and resize it to 224x224: Pillow releases the GIL in both."""
    from PIL import Image

    image = Image.open(io.BytesIO(_jpeg())).convert("RGB").resize((224, 224))
    return image.size[0] + index


def workloads() -> dict[str, Callable[[int], Any]]:
    chosen: dict[str, Callable[[int], Any]] = {"pure Python": pure_python, "numpy": numpy_work, "zlib": zlib_work}
    try:
        import PIL  # noqa: F401
    except ImportError:
        return chosen
    return {**chosen, "PIL decode+resize": pil_work}


class Samples(Dataset[Any]):
    """``work(i)`` for each sample, one at a time."""

    def __init__(self, work: Callable[[int], Any]) -> None:
        self.work = work

    def __len__(self) -> int:
        return SAMPLES

    def __getitem__(self, index: int) -> Any:
        return self.work(index)


class ThreadedSamples(Samples):
    """The same samples, a batch at a time in ``threads`` threads (the DataLoader calls ``__getitems__``)."""

    def __init__(self, work: Callable[[int], Any], threads: int) -> None:
        super().__init__(work)
        self.threads = threads

    def __getitems__(self, indices: list[int]) -> list[Any]:
        return map_in_threads(self.work, indices, max_workers=self.threads)


def keep(batch: list[Any]) -> list[Any]:
    return batch


def cpu_seconds() -> float:
    """CPU time of this process (every thread) and of its live children (the DataLoader's workers)."""
    total = time.process_time()
    for child in psutil.Process().children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def timed_pass(loader: DataLoader[Any]) -> tuple[float, float]:
    """(samples per second, CPU seconds per wall second) over one pass: the second is the parallelism the
    mode got (at most 1 for threads running GIL-bound code), whatever else the machine runs."""
    cpu, started = cpu_seconds(), time.perf_counter()
    count = sum(len(batch) for batch in loader)
    wall = time.perf_counter() - started
    return count / wall, (cpu_seconds() - cpu) / wall


def measure(runs: int) -> dict[str, Any]:
    n = max(2, usable_cpus())
    results: dict[str, Any] = {}
    for name, work in workloads().items():
        work(0)  # builds the inputs before any fork, so no mode pays for them
        loaders = {
            "serial": DataLoader(Samples(work), batch_size=BATCH, collate_fn=keep),
            "threads": DataLoader(ThreadedSamples(work, n), batch_size=BATCH, collate_fn=keep),
            "processes": DataLoader(Samples(work), batch_size=BATCH, collate_fn=keep, num_workers=n,
                                    persistent_workers=True),
        }
        kept = interleave([Variant(mode, functools.partial(timed_pass, loader), runs)
                           for mode, loader in loaders.items()], progress=name)
        del loaders
        rates = {mode: summary([rate for rate, _ in values]) for mode, values in kept.items()}
        busy = {mode: summary([cores for _, cores in values]) for mode, values in kept.items()}
        serial = rates["serial"]["median"]
        results[name] = {"samples_per_s": rates, "cpu_per_wall": busy,
                         "threads_vs_serial": ratio(rates["threads"]["median"], serial),
                         "processes_vs_serial": ratio(rates["processes"]["median"], serial),
                         "ms_per_sample_serial": 1000 / serial}
    return {"threads": n, "worker_processes": n, "batch_size": BATCH, "samples_per_pass": SAMPLES,
            "workloads": results}


def render(data: dict[str, Any]) -> str:
    rows = []
    for name, r in data["workloads"].items():
        rates = {mode: r["samples_per_s"][mode]["median"] for mode in ("serial", "threads", "processes")}
        winner = max(rates, key=lambda mode: rates[mode])
        busy = {mode: r["cpu_per_wall"][mode]["median"] for mode in rates}
        rows.append([name, f"{r['ms_per_sample_serial']:.1f}", f"{rates['serial']:.0f}",
                     f"{rates['threads']:.0f} ({r['threads_vs_serial']:.2f}x)",
                     f"{rates['processes']:.0f} ({r['processes_vs_serial']:.2f}x)", winner,
                     " / ".join(f"{busy[mode]:.2f}" for mode in ("serial", "threads", "processes"))])
    runs = next(iter(data["workloads"].values()))["samples_per_s"]["serial"]["runs"]
    head = (f"Preprocessing pool: samples/s, medians of {runs} interleaved passes of {data['samples_per_pass']} "
            f"samples (batch {data['batch_size']}; first pass dropped); {data['threads']} threads "
            f"(map_in_threads in __getitems__) vs {data['worker_processes']} persistent DataLoader workers.")
    table = markdown_table(["work", "ms/sample serial", "serial", "threads", "processes", "fastest",
                            "CPU s per wall s: serial / threads / processes"], rows)
    foot = ("\n\nCPU s per wall s: the cores each mode kept busy (this process's threads and its DataLoader "
            "workers); threads running code that holds the GIL cannot pass 1.")
    return head + "\n\n" + table + foot


def main(argv: Sequence[str] | None = None) -> int:
    return run_benchmark_main(NAME, __doc__.splitlines()[0], measure, render, argv)


if __name__ == "__main__":
    sys.exit(main())
