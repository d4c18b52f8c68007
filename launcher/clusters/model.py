"""What cluster detection returns. Pure data."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cluster:
    kind: str  # "local"
    description: str
