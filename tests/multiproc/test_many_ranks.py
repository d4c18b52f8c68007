"""Hundreds of local ranks: every return value comes back, and a worker holds no fd per rank of the group.

Elastic gives each rank a return queue and sends every worker all of them, two fds per rank: the
forkserver passes at most 253 fds, so 126 local ranks and up failed with "too many fds". The workers
now share one pipe (``launcher.returns``); the agent, which still holds a few fds per rank, raises its
soft open-files limit to the hard one, and the workers get the user's back (``launcher.rlimits``).
Through the Python API, which returns the values; gloo connects lazily (``samples/many_ranks.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from launcher.plan.limits import agent_open_files

resource = pytest.importorskip("resource")
SAMPLES = Path(__file__).resolve().parent.parent / "samples"
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts a worker's fds in /proc")
LOW_SOFT_LIMIT = 512  # below the agent's need for 256 ranks (about 1050 fds measured): it must raise its own


def _run(nprocs: int, start_method: str, env: dict[str, str], timeout: float,
         soft_limit: int | None = None) -> dict[int, Any]:
    """Every rank's return value, ``[rank, {"fifo": n, "pipe": n, "all": n}, soft open-files limit]``."""
    command = [sys.executable, "many_ranks.py", str(nprocs), start_method]
    if soft_limit is not None:  # the limit a user's shell would give the launcher
        command = ["sh", "-c", f'ulimit -Sn {soft_limit} && exec "$0" "$@"', *command]
    done = subprocess.run(command, cwd=SAMPLES, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-4000:]
    values = {int(rank): value for rank, value in json.loads(done.stdout.splitlines()[-1]).items()}
    assert sorted(values) == list(range(nprocs)) and all(value[0] == rank for rank, value in values.items())
    assert {value[1]["fifo"] for value in values.values()} == {2}  # its own stdout and stderr FIFOs, no other's
    return values


@pytest.mark.timeout(300)
def test_256_local_ranks_hand_back_every_value(run_env: dict[str, str], token: str) -> None:
    """About 35 s on 2 busy cores: the torch-preloaded forkserver forks 256 workers one after the other."""
    if run_env.get("PET_START_METHOD") == "spawn":
        pytest.skip("256 spawned interpreters each import torch: minutes on 2 cores; the forkserver's fd cap "
                    "is the default start method's, and spawn's workers are covered by the small test below")
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and agent_open_files(256, False, "linux") > hard:
        pytest.skip(f"this host's hard open-files limit ({hard}) is below what 256 ranks need: the plan refuses")
    soft = min(LOW_SOFT_LIMIT, hard)
    values = _run(256, "auto", run_env, timeout=280, soft_limit=soft)
    assert max(value[1]["all"] for value in values.values()) < 64  # elastic's queues alone were 512 per worker
    assert {value[2] for value in values.values()} == {soft}  # the user's limit: only the launcher raised its own


@pytest.mark.timeout(300)
@pytest.mark.parametrize("start_method", ["default", "fork"])
def test_a_workers_fds_do_not_grow_with_the_ranks(start_method: str, run_env: dict[str, str], token: str) -> None:
    """The same pipes in every worker, of 2 ranks or 5 (elastic's queues: 2 per rank; under fork, multiprocessing's
    pipes to each sibling forked before it and every rank's FIFOs in the agent came along too)."""
    if start_method == "fork" and run_env.get("PET_START_METHOD") == "spawn":
        pytest.skip("fork is named, whatever PET_START_METHOD says: the default pass ran it")
    method = run_env.get("PET_START_METHOD", "auto") if start_method == "default" else start_method
    runs = [_run(nprocs, method, run_env, timeout=140) for nprocs in (2, 5)]
    assert len({value[1]["pipe"] for values in runs for value in values.values()}) == 1, runs
    assert len({value[2] for values in runs for value in values.values()}) == 1, runs  # the user's limit, everywhere
