"""Where the launcher runs: pure detection from the environment.

``detect(environ)`` tries each detector in a documented priority order and
returns a frozen ``Cluster``. It reads nothing but its argument, so a test is
a dict. Kinds: ``local`` (this machine, the fallback). A scheduler's detector
(SLURM) slots in before ``local`` without changing callers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from launcher.clusters.local import detect_local
from launcher.clusters.model import Cluster

__all__ = ["DETECTORS", "Cluster", "detect"]

DETECTORS: tuple[Callable[[Mapping[str, str]], Cluster | None], ...] = (detect_local,)  # first that applies wins


def detect(environ: Mapping[str, str]) -> Cluster:
    for detector in DETECTORS:
        cluster = detector(environ)
        if cluster is not None:
            return cluster
    raise RuntimeError("no cluster detector applies (the local one always should)")  # pragma: no cover
