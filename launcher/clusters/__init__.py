"""Where the launcher runs: pure detection from the environment.

``detect(environ)`` tries each detector in a documented priority order and
returns a frozen ``Cluster``. It reads nothing but its argument, so a test is
a dict. Kinds, in order: ``slurm`` (``clusters/slurm.py``: a SLURM job, not
inside a torchrun worker), ``local`` (this machine, the fallback).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from launcher.clusters.local import detect_local
from launcher.clusters.model import Cluster, SlurmJob
from launcher.clusters.slurm import detect_slurm

__all__ = ["DETECTORS", "Cluster", "SlurmJob", "detect"]

# The first that applies wins.
DETECTORS: tuple[Callable[[Mapping[str, str]], Cluster | None], ...] = (detect_slurm, detect_local)


def detect(environ: Mapping[str, str]) -> Cluster:
    for detector in DETECTORS:
        cluster = detector(environ)
        if cluster is not None:
            return cluster
    raise RuntimeError("no cluster detector applies (the local one always should)")  # pragma: no cover
