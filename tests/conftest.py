"""Shared fixtures: run the launcher as a user would, and prove that nothing is left behind.

Every process a test starts carries a unique ``LAUNCHER_TEST_TOKEN`` in its
environment; after the test, any process still holding that token (even one
re-parented to init) fails the test and is killed.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLES = Path(__file__).resolve().parent / "samples"
TOKEN_VARIABLE = "LAUNCHER_TEST_TOKEN"


def processes_with_token(token: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["pid"]):
        if process.pid == os.getpid():
            continue
        try:
            if process.environ().get(TOKEN_VARIABLE) == token:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def token() -> Iterator[str]:
    """A token for this test's processes; the test fails if any of them outlive it."""
    value = uuid.uuid4().hex
    yield value
    leftovers = processes_with_token(value)
    if leftovers:
        _, alive = psutil.wait_procs(leftovers, timeout=10)
        for process in alive:
            process.kill()
        assert not alive, f"processes left behind: {[p.pid for p in alive]}"


@pytest.fixture
def no_leftover_children() -> Iterator[None]:
    """In-process tests: every child this test started (DataLoader workers...) is gone afterwards.

    The multiprocessing helpers of the test process itself (resource tracker, forkserver) stay.
    """
    yield
    gc.collect()  # drops loaders, whose iterators shut their workers down
    helpers = ("resource_tracker", "forkserver")
    children = []
    for process in psutil.Process().children(recursive=True):
        try:
            if not any(helper in " ".join(process.cmdline()) for helper in helpers):
                children.append(process)
        except psutil.Error:
            continue
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"worker processes left behind: {alive}"


@pytest.fixture
def run_env(token: str) -> dict[str, str]:
    # PET_START_METHOD=spawn stays: CI runs the multi-process tests a second time with it (what macOS
    # and Windows will do); every other torchrun variable of the outer environment goes.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PET_", "TORCHELASTIC_", "LOGLEVEL")) or k == "PET_START_METHOD"}
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                 "OMP_NUM_THREADS"):
        env.pop(name, None)
    env[TOKEN_VARIABLE] = token
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def launcher(run_env: dict[str, str]):  # type: ignore[no-untyped-def]
    """Run ``python -m launcher ARGS`` and return its exit code and output."""

    def run(args: Sequence[str], cwd: Path = SAMPLES, timeout: float = 60, env: dict[str, str] | None = None) -> Ran:
        done = subprocess.run(
            [sys.executable, "-m", "launcher", *map(str, args)],
            cwd=cwd, env={**run_env, **(env or {})}, capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        return Ran(done.returncode, done.stdout, done.stderr)

    return run


@pytest.fixture
def torchrun(run_env: dict[str, str]):  # type: ignore[no-untyped-def]
    """Run ``torchrun ARGS`` (the anchor) the same way."""

    def run(args: Sequence[str], cwd: Path = SAMPLES, timeout: float = 60) -> Ran:
        done = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", *map(str, args)],
            cwd=cwd, env=run_env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        )
        return Ran(done.returncode, done.stdout, done.stderr)

    return run
