"""Where the launcher runs: pure detection from the environment.

``detect(environ)`` tries each kind in a documented priority order and returns
a frozen ``Cluster``. It reads nothing but its argument, so a test is a dict.
Kinds: ``local`` (this machine, the fallback). SLURM detection will slot in
before ``local`` without changing callers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Cluster:
    kind: str  # "local"
    description: str


def _local(environ: Mapping[str, str]) -> Cluster:
    return Cluster("local", "this machine")


DETECTORS = (_local,)  # priority order: first that applies wins


def detect(environ: Mapping[str, str]) -> Cluster:
    for detector in DETECTORS:
        cluster = detector(environ)
        if cluster is not None:
            return cluster
    raise AssertionError("the local detector always applies")  # pragma: no cover
