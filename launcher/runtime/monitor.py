"""The monitor thread of every worker: one JSON line per interval in ``metrics/rank_<R>.jsonl`` of the run folder.

Each record (schema: ``docs/monitoring.md``) joins what the training loop
counted (``runtime.meters``: steps, samples, data waits, ``ctx.log`` values)
with what the thread samples itself: the process's CPU and memory (psutil) and,
on CUDA, the device's memory and utilisation through NVML (``runtime.gpu_stats``;
``torch.cuda`` is never called from the thread). Built on the one background-thread
pattern (``runtime.threads``). ``stop()`` writes a last, ``final`` record from
the caller's thread, so that the last interval is not lost. Each record is one
``write`` to a file opened for appending: the launcher may read it at any time.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psutil

from launcher.protocol import metrics_file
from launcher.runtime.gpu_stats import GpuProbe, open_gpu_probe
from launcher.runtime.log import get_logger
from launcher.runtime.meters import METERS, Meters, Reading
from launcher.runtime.threads import BackgroundLoop
from launcher.schema import MonitorSettings

SCHEMA_VERSION = 1
CHILDREN_EVERY = 10.0  # seconds between scans for the rank's children (DataLoader workers come and go rarely)


@dataclass(frozen=True)
class Identity:
    """Who writes the records."""

    rank: int
    local_rank: int
    node_rank: int
    attempt: int


class Monitor:
    """Samples this worker every ``interval`` seconds into ``path`` until ``stop()``."""

    def __init__(self, path: str, interval: float, identity: Identity, meters: Meters,
                 gpu: GpuProbe | None = None) -> None:
        self.path = path
        self._interval = interval
        self._identity = identity
        self._meters = meters
        self._gpu = gpu
        self._process = psutil.Process()
        self._write_lock = threading.Lock()
        self._fd: int | None = None
        self._started = 0.0
        self._last_time = 0.0
        self._last = Reading(0, 0, 0.0, None, None)
        self._loop: BackgroundLoop | None = None
        self._first = True
        self._children: list[psutil.Process] = []
        self._children_listed = -CHILDREN_EVERY

    def start(self) -> Monitor:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if not _ends_a_line(self.path):  # an earlier attempt killed mid-write left half a record
            os.write(self._fd, b"\n")
        self._process.cpu_percent(None)  # the first call starts psutil's CPU interval
        self._started = self._last_time = time.monotonic()
        self._last = self._meters.read()
        self._loop = BackgroundLoop("launcher-monitor", self._on_interval, self._interval)
        self._loop.start()
        return self

    def _on_interval(self) -> None:
        if self._first:  # the loop calls at once, then every interval: the first record is one interval in
            self._first = False
            return
        self._write(final=False)

    def stop(self) -> None:
        """End the thread and write the last record (its interval may be shorter). Idempotent."""
        if self._loop is None:
            return
        loop, self._loop = self._loop, None
        try:
            loop.stop()
        except Exception as error:  # a monitor that failed must not fail the training: say so once
            get_logger().warning("monitor: stopped early: %s: %s", type(error).__name__, error)
        finally:
            self._write(final=True)
            with self._write_lock:
                if self._fd is not None:
                    os.close(self._fd)
                    self._fd = None

    def _write(self, *, final: bool) -> None:
        with self._write_lock:
            if self._fd is None:
                return
            record = self._record(final)
            os.write(self._fd, (json.dumps(record, separators=(",", ":")) + "\n").encode())

    def _record(self, final: bool) -> dict[str, Any]:
        now = time.monotonic()
        reading = self._meters.read()
        span = max(now - self._last_time, 1e-9)
        last, self._last, self._last_time = self._last, reading, now
        me = self._identity
        return {
            "v": SCHEMA_VERSION,
            "time": round(time.time(), 3),
            "rank": me.rank,
            "local_rank": me.local_rank,
            "node_rank": me.node_rank,
            "attempt": me.attempt,
            "elapsed": round(now - self._started, 3),
            "interval": round(span, 6),
            "step": reading.step,
            "total_steps": reading.total_steps,
            "epoch": reading.epoch,
            "samples": reading.samples,
            "steps_per_s": round(max(reading.step - last.step, 0) / span, 3),
            "samples_per_s": round(max(reading.samples - last.samples, 0) / span, 3),
            "data_wait": round(min(max(reading.data_wait_seconds - last.data_wait_seconds, 0.0) / span, 1.0), 4),
            **self._process_usage(),
            "gpu": self._gpu.sample() if self._gpu is not None else None,
            "metrics": reading.values,
            "final": final,
        }

    def _process_usage(self) -> dict[str, Any]:
        usage: dict[str, Any] = {"cpu_percent": None, "rss_bytes": None, "children_rss_bytes": 0}
        with contextlib.suppress(psutil.Error):
            usage["cpu_percent"] = round(self._process.cpu_percent(None), 1)
            usage["rss_bytes"] = self._process.memory_info().rss
            now = time.monotonic()
            if now - self._children_listed >= CHILDREN_EVERY:  # a scan of every process: not every interval
                self._children = self._process.children(recursive=True)
                self._children_listed = now
            children = 0
            for child in self._children:
                with contextlib.suppress(psutil.Error):
                    children += child.memory_info().rss
            usage["children_rss_bytes"] = children
        return usage


def _ends_a_line(path: str) -> bool:
    """Whether the file is empty or ends with a newline (so that the next record starts a line of its own)."""
    with open(path, "rb") as handle:
        if handle.seek(0, os.SEEK_END) == 0:
            return True
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def start_monitor(settings: MonitorSettings, backend: str, environ: Mapping[str, str]) -> Monitor | None:
    """This worker's monitor, started (the bootstrap stops it); None when off or outside the launcher."""
    path = metrics_file(environ)
    if path is None or not settings.enabled:
        return None
    local_rank = int(environ.get("LOCAL_RANK", 0))
    identity = Identity(rank=int(environ["RANK"]), local_rank=local_rank,
                        node_rank=int(environ.get("GROUP_RANK", 0)),
                        attempt=int(environ.get("TORCHELASTIC_RESTART_COUNT", 0)))
    gpu = open_gpu_probe(local_rank, environ) if backend == "nccl" else None
    METERS.read_every = settings.interval
    return Monitor(path, settings.interval, identity, METERS, gpu).start()
