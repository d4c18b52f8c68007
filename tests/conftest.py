"""Shared fixtures: run the launcher as a user would, and prove that nothing is left behind.

Every process a test starts carries a unique tag in its environment
(``launcher.testing.processes``); after the test, any process still holding
that tag (even one re-parented to init) fails the test and is killed.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import psutil
import pytest

from launcher.testing.cli import Ran, clean_environment, run_launcher
from launcher.testing.processes import kill_tagged, new_tag, wait_until_gone

REPO = Path(__file__).resolve().parent.parent
SAMPLES = Path(__file__).resolve().parent / "samples"
# Daemons that session fixtures start and keep for later tests (tests/slurm's cluster): with their own
# children, they are not any one test's leftovers.
SESSION_DAEMONS: set[int] = set()


@pytest.fixture
def token() -> Iterator[str]:
    """A tag for this test's processes; the test fails if any of them outlive it."""
    value = new_tag()
    yield value
    _, alive = wait_until_gone(value, timeout=10, poll=0.05)
    if alive:
        kill_tagged(value)
        pytest.fail(f"processes left behind: {[p.pid for p in alive]}")


@pytest.fixture
def no_leftover_children() -> Iterator[None]:
    """In-process tests: every child this test started (DataLoader workers...) is gone afterwards.

    The multiprocessing helpers of the test process itself (resource tracker, forkserver) stay, and so do
    the pytest plugin's rank server (not its ranks: they are the test's) and the daemons of session fixtures
    (``SESSION_DAEMONS``) and their children.
    """
    yield
    gc.collect()  # drops loaders, whose iterators shut their workers down
    helpers = ("resource_tracker", "forkserver")
    children = []
    for process in psutil.Process().children(recursive=True):
        try:
            command = " ".join(process.cmdline())
            if any(helper in command for helper in helpers):
                continue
            if "launcher.testing.server" in command and process.ppid() == os.getpid():
                continue
            if process.pid in SESSION_DAEMONS or any(parent.pid in SESSION_DAEMONS for parent in process.parents()):
                continue
            children.append(process)
        except psutil.Error:
            continue
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"worker processes left behind: {alive}"


@pytest.fixture
def run_env(token: str) -> dict[str, str]:
    # PET_START_METHOD=spawn stays: CI runs the multi-process tests a second time with it (what macOS
    # and Windows will do); every other torchrun variable of the outer environment goes.
    return clean_environment(os.environ, token, keep=("PET_START_METHOD",))


@pytest.fixture
def launcher(run_env: dict[str, str]):  # type: ignore[no-untyped-def]
    """Run ``python -m launcher ARGS`` and return its exit code and output."""

    def run(args: Sequence[object], cwd: Path = SAMPLES, timeout: float = 60, env: dict[str, str] | None = None) -> Ran:
        return run_launcher(args, cwd=cwd, env={**run_env, **(env or {})}, timeout=timeout)

    return run


@pytest.fixture
def torchrun(run_env: dict[str, str]):  # type: ignore[no-untyped-def]
    """Run ``torchrun ARGS`` (the anchor) the same way."""

    def run(args: Sequence[object], cwd: Path = SAMPLES, timeout: float = 60, env: dict[str, str] | None = None) -> Ran:
        return run_launcher(args, cwd=cwd, env={**run_env, **(env or {})}, timeout=timeout,
                            module="torch.distributed.run")

    return run
