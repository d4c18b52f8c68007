"""Run ``python -m launcher`` as a user would: a clean environment, no stdin, output captured.

Never imports torch.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from launcher.testing.processes import TAG_VARIABLE

# What an outer torchrun (or launcher) puts in the environment: a run under test must not inherit it.
# SLURM's job id: a suite run inside a SLURM job (a CI runner) still launches on this machine alone.
OUTER_LAUNCH_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                          "OMP_NUM_THREADS", "SLURM_JOB_ID", "SLURM_JOBID")
OUTER_LAUNCH_PREFIXES = ("PET_", "TORCHELASTIC_", "LOGLEVEL")


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


def clean_environment(environ: Mapping[str, str], tag: str, keep: Sequence[str] = ()) -> dict[str, str]:
    """``environ`` without an outer launch's variables (except those in ``keep``), tagged, unbuffered."""
    env = {name: value for name, value in environ.items()
           if name in keep or (not name.startswith(OUTER_LAUNCH_PREFIXES) and name not in OUTER_LAUNCH_VARIABLES)}
    env[TAG_VARIABLE] = tag
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_launcher(args: Sequence[object], *, cwd: Path, env: Mapping[str, str], timeout: float = 60,
                 module: str = "launcher") -> Ran:
    """Run ``python -m <module> ARGS`` to the end (``module``: e.g. ``torch.distributed.run``, the anchor)."""
    done = subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=cwd, env=dict(env),
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return Ran(done.returncode, done.stdout, done.stderr)
