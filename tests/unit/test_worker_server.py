"""The torch-preloaded forkserver must not initialise CUDA: a fork after CUDA breaks every worker.

On a CPU machine ``torch.cuda.is_initialized()`` is always False, so the check
records any call of ``torch.cuda._lazy_init`` instead: it would fail if the
preloaded modules (or the bootstrap's start-up steps) touched CUDA.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(60)

PROBE = """
import torch, torch.cuda
calls = []
real = torch.cuda._lazy_init
torch.cuda._lazy_init = lambda *a, **k: calls.append("lazy_init")
import importlib
from launcher.supervisor import PRELOAD
for name in PRELOAD:
    importlib.import_module(name)
from launcher import bootstrap
from launcher.bootstrap import WorkerPayload
from launcher.schema import JobConfig
from launcher.targets import ScriptTarget
bootstrap._apply_startup_environment(WorkerPayload(ScriptTarget("x.py"), (), JobConfig(), "forkserver"))
EXTRA
print("calls", len(calls))
"""


def _probe(extra: str) -> str:
    done = subprocess.run([sys.executable, "-c", PROBE.replace("EXTRA", extra)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_preloaded_modules_do_not_initialise_cuda():
    assert _probe("") == "calls 0"


def test_the_probe_sees_a_cuda_initialisation():
    assert _probe("torch.cuda._lazy_init()") == "calls 1"
