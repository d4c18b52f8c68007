"""The torch-preloaded forkserver must not initialise CUDA: a fork after CUDA breaks every worker.

On a CPU machine ``torch.cuda.is_initialized()`` is always False, so the check
records any call of ``torch.cuda._lazy_init`` instead: it would fail if the
preloaded modules (or the bootstrap's start-up steps, run here on an empty
script) touched CUDA.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

PROBE = """
import torch, torch.cuda
calls = []
real = torch.cuda._lazy_init
torch.cuda._lazy_init = lambda *a, **k: calls.append("lazy_init")
import importlib, sys
from launcher.supervise.server import PRELOAD
for name in PRELOAD:
    importlib.import_module(name)
from launcher.bootstrap import run_worker
from launcher.protocol import WorkerPayload
from launcher.schema import JobConfig
from launcher.targets import ScriptTarget
run_worker(WorkerPayload(ScriptTarget(sys.argv[1]), (), JobConfig(), "gloo", "forkserver"))
EXTRA
print("calls", len(calls))
"""


def _probe(extra: str, tmp_path: Path) -> str:
    script = tmp_path / "empty.py"
    script.write_text("")
    done = subprocess.run([sys.executable, "-c", PROBE.replace("EXTRA", extra), str(script)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_preloaded_modules_do_not_initialise_cuda(tmp_path: Path) -> None:
    assert _probe("", tmp_path) == "calls 0"


def test_the_probe_sees_a_cuda_initialisation(tmp_path: Path) -> None:
    assert _probe("torch.cuda._lazy_init()", tmp_path) == "calls 1"
