"""A real SLURM cluster for the tests of this folder: started once per test process, stopped after the last test.

``slurm`` gives the cluster to a test and, afterwards, fails it if a job is still
queued or running or if anything a job started is still alive on the nodes
(slurmstepd included); the ``token`` fixture catches the job's own processes
(launchers, workers), which carry the test's tag through sbatch's environment.
When the daemons cannot start the tests fail with the reason under CI=true and
are skipped elsewhere. Under pytest-xdist every worker has its own cluster.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from tests.conftest import SESSION_DAEMONS
from tests.slurm.cluster import ClusterUnavailable, LocalSlurm, running_cluster


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[LocalSlurm]:
    try:
        with running_cluster(nodes=2) as cluster:
            SESSION_DAEMONS.update(cluster.daemons)
            yield cluster
    except ClusterUnavailable as unavailable:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot start a local SLURM cluster: {unavailable}", pytrace=False)
        pytest.skip(f"cannot start a local SLURM cluster: {unavailable}")


@pytest.fixture
def slurm(slurm_cluster: LocalSlurm, token: str) -> Iterator[LocalSlurm]:
    """The cluster; the test fails if a job is still queued, or a process of a job still alive, after it."""
    yield slurm_cluster
    deadline = time.monotonic() + 10
    queued = slurm_cluster.queued()
    while set(queued.values()) == {"COMPLETING"} and time.monotonic() < deadline:  # a finished job's cleanup
        time.sleep(0.05)
        queued = slurm_cluster.queued()
    if queued:
        slurm_cluster.command(["scancel", *queued], check=False)
    left = slurm_cluster.leftovers()
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = slurm_cluster.leftovers()
    assert not queued, f"jobs still queued, running or completing after the test: {queued}"
    assert not left, f"left on the nodes: {[(p.pid, p.name()) for p in left]}"


@pytest.fixture
def slurm_env(slurm_cluster: LocalSlurm, run_env: dict[str, str]) -> dict[str, str]:
    """The test's tagged environment, pointed at the cluster: what ``sbatch``/``srun`` (and the job) get."""
    return slurm_cluster.environ(run_env)
