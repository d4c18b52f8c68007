"""The agent's view of its ranks' monitors: every interval, read their records, compare them, show progress.

A ``BackgroundLoop`` in the process that hosts the agent (``engine.run_agent``). Each step polls the
ranks' ``metrics/rank_<R>.jsonl`` in the run folder (this node's ranks: each node's launcher has a folder
of its own), appends the comparison to ``world.jsonl`` when a rank is compared, and hands the progress of
the lowest current rank (rank 0 on the first node) to the console display. ``stop()`` reads the records
once more after the workers ended, so that the last interval (each rank's ``final`` record) is shown.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping

from launcher.runtime.threads import BackgroundLoop
from launcher.schema import MonitorSettings
from launcher.supervise.console_progress import ConsoleProgress, console_progress
from launcher.supervise.metrics_feed import MetricsFeed, Record
from launcher.supervise.progress_text import ProgressText, progress_text
from launcher.supervise.rank_compare import is_current, world_record

WORLD_FILE = "world.jsonl"


class RankMonitor:
    """Reads the ranks' records of ``run_folder`` every ``settings.interval`` seconds until stopped."""

    def __init__(self, run_folder: str, settings: MonitorSettings, display: ConsoleProgress | None) -> None:
        self.display = display
        self._feed = MetricsFeed(run_folder)
        self._world_path = os.path.join(run_folder, WORLD_FILE)
        self._interval = settings.interval
        self._loop = BackgroundLoop("launcher-monitor", self._step, settings.interval)

    @classmethod
    def for_settings(cls, run_folder: str, settings: MonitorSettings) -> RankMonitor | None:
        """The monitor ``settings`` ask for, drawing on this process's stderr; None when monitoring is off."""
        if not settings.enabled:
            return None
        return cls(run_folder, settings, console_progress(settings.progress, sys.stderr, settings.lines_every))

    def start(self) -> RankMonitor:
        self._loop.start()
        return self

    def stop(self) -> None:
        """Stop the loop, read the final records, leave the last progress on the console."""
        try:
            self._loop.stop()
        finally:
            text = self._poll(end=True)
            if self.display is not None:
                self.display.finish(text)

    def _step(self) -> None:
        text = self._poll()
        if self.display is not None:
            self.display.update(text)

    def _poll(self, end: bool = False) -> ProgressText | None:
        """Read the new records, write the comparison; the progress to show, or None when no rank is current.

        ``end``: the workers ended; every rank's latest record counts for the progress, however old.
        """
        now = time.time()
        records = self._feed.poll()
        world = world_record(records, now, self._interval)
        if world is not None:
            with contextlib.suppress(OSError), open(self._world_path, "a", encoding="utf-8") as file:
                file.write(json.dumps(world) + "\n")
        return shown_progress(records, world, now, math.inf if end else self._interval, self._feed.running)


def shown_progress(records: Mapping[int, Record], world: Record | None, now: float, interval: float,
                   running: Callable[[int], Record | None] = lambda rank: None) -> ProgressText | None:
    """The progress of the lowest rank whose record is current (a final one too), with the straggler named; None
    until a rank made a step.

    A final record's interval is the rank's last moments (often no step at all): its rates are those of the
    rank's last whole interval (``running``) of the same attempt.
    """
    current = [rank for rank, record in records.items() if is_current(record, now, interval)]
    if not current or not any(records[rank].get("step") for rank in current):
        return None  # no rank has made a step yet (or a job that never reports any): nothing to show
    rank = min(current)
    record = records[rank]
    before = running(rank) if record.get("final") is True else None
    if before is not None and before.get("attempt") == record.get("attempt"):
        record = {**record, "steps_per_s": before.get("steps_per_s"), "samples_per_s": before.get("samples_per_s")}
    return progress_text(rank, record, world)
