"""Each run's own folder under ``--log-dir``: a new one per run, never one that holds another run's files.

``<log dir>/<YYYYmmdd-HHMMSS>-<run id>/attempt_<n>/<local rank>/`` (the run id is
the rendezvous id: the job's ``--rdzv-id``, or a fresh one). Elastic would
empty ``attempt_0`` of a folder used twice; a run here never reuses one: a
name taken by a run started in the same second gets ``-2``, ``-3``...
"""

from __future__ import annotations

import itertools
import os

from launcher.errors import ConfigError
from launcher.plan.model import run_folder_name


def make_run_folder(log_dir: str, run_id: str, started: float) -> str:
    """Create this run's folder under ``log_dir`` (made if missing) and return its path."""
    stem = os.path.join(log_dir, run_folder_name(run_id, started))
    try:
        os.makedirs(log_dir, exist_ok=True)
        for number in itertools.count(1):
            path = stem if number == 1 else f"{stem}-{number}"
            try:
                os.mkdir(path)
            except FileExistsError:
                continue
            return path
    except OSError as error:
        raise ConfigError(f"logs.dir: cannot create a run folder in {log_dir}: {error.strerror}",
                          "choose a folder you can write (--log-dir)") from None
    raise AssertionError("unreachable")  # pragma: no cover - count() never ends
