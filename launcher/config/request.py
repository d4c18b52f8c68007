"""What the command line asked of the job, before any file is read: kept apart so that parsing flags
imports nothing heavy (the worker server starts right after the flags; YAML and the validator load later).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class JobRequest:
    """What the command line said about the job: the target, flag values with their names, overrides."""

    target: str | None
    as_module: bool = False
    target_args: tuple[str, ...] = ()
    values: Mapping[str, tuple[Any, str]] = field(default_factory=dict)  # dotted key → (value, as written)
    overrides: tuple[str, ...] = ()
