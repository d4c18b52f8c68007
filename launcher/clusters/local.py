"""The ``local`` cluster: this machine alone, the fallback when no scheduler is detected. Pure."""

from __future__ import annotations

from collections.abc import Mapping

from launcher.clusters.model import Cluster


def detect_local(environ: Mapping[str, str]) -> Cluster:
    return Cluster("local", "this machine")
