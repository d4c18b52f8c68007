"""An elastic job across nodes: a node that joins late is admitted, a node SIGKILLed mid-run is left behind,
and the job ends from its checkpoints with the parameters of the uninterrupted training.

``--nnodes 1:2 --max-restarts 1``, 2 ranks per node, c10d rendezvous hosted by the first node,
checkpoints in one folder that both nodes write (one filesystem: a shared one). The job
(``samples/elastic_steps.py``) says when a checkpoint is complete and then waits outside torch, so
that only the launcher can tell that the rendezvous changed. The first node starts alone and holds at
step 3; the second joins: the first re-forms to admit it (no restart counted) and the 4 ranks resume
from step 3 and hold at step 6; the second node's launcher is SIGKILLed: the first names that node
and its ranks (its keep-alive stopped), re-forms alone, resumes on 2 ranks from step 6 and ends with
the parameters that the sample computes in plain Python. About 50 s here.
"""

from __future__ import annotations

import ast
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.multinode.conftest import StartOnNode
from tests.multinode.netns import Node
from tests.samples.elastic_steps import expected

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
STEPS, NPROCS = 12, 2
HOLDS = {NPROCS: 3, 2 * NPROCS: 6}  # world size → the step at which the job holds in that world
# Fast keep-alive and last call: a node is dropped 4 s after its last heartbeat, a round closes 3 s after
# its minimum is reached (elastic's defaults: 15 s and 30 s).
RDZV_CONF = "keep_alive_interval=1,keep_alive_max_attempt=4,last_call_timeout=3,join_timeout=60"

pytestmark = [pytest.mark.multinode, pytest.mark.timeout(300)]


def _job(folder: Path, marker: Path) -> Path:
    job = folder / "job.yaml"
    job.write_text(
        f"entrypoint: {SAMPLES / 'elastic_steps.py'}:main\n"
        f"kwargs: {{steps: {STEPS}, holds: {HOLDS}, marker: '{marker}'}}\n"
        f"checkpoint: {{dir: {folder / 'checkpoints'}, every_steps: 1, async: false}}\n"
    )
    return job


def _wait_for(marker: Path, processes: list[subprocess.Popen[str]], timeout: float = 120) -> None:
    """Until the job writes ``marker``; fails if a launcher ends first."""
    deadline = time.monotonic() + timeout
    while not marker.exists():
        ended = [p.args for p in processes if p.poll() is not None]
        assert not ended, f"a launcher ended before the job wrote {marker.name}: {ended}"
        assert time.monotonic() < deadline, f"the job did not write {marker.name} in {timeout} s"
        time.sleep(0.05)


def test_a_node_joins_late_then_is_killed_and_the_job_ends_on_the_other_from_its_checkpoints(
        nodes: list[Node], on_node: StartOnNode, tmp_path: Path) -> None:
    host, other = nodes[0], nodes[1]
    marker = tmp_path / "holds"
    job = _job(tmp_path, marker)
    command = ["--nnodes", "1:2", "--nprocs", NPROCS, "--max-restarts", 1, "--rdzv-backend", "c10d",
               "--rdzv-endpoint", f"{host.address}:29400", "--rdzv-conf", RDZV_CONF, job]  # the same on every node
    first = on_node(host, command, cwd=tmp_path)
    _wait_for(Path(f"{marker}-{NPROCS}"), [first])  # alone: the round closed after its last call
    second = on_node(other, command, cwd=tmp_path)
    _wait_for(Path(f"{marker}-{2 * NPROCS}"), [first, second])

    second.kill()  # the launcher alone, SIGKILL: its workers and agent go with it, the rendezvous stays open
    second.communicate(timeout=60)
    try:
        out, err = first.communicate(timeout=120)
    except subprocess.TimeoutExpired as late:
        pytest.fail(f"the first node did not end after the second was killed:\n{late.stdout!r}\n{late.stderr!r}")
    assert first.returncode == 0, err[-3000:]
    assert second.returncode == -9

    for line in ("a node is waiting to join: restarting the workers to admit it, not counted as a restart",
                 f"the job re-formed with node {other.address} new: 4 rank(s) on 2 node(s)",
                 f"node {other.address} (ranks 2, 3) left the rendezvous; restarting the workers with the nodes "
                 "left: restart 1 of 1",
                 f"the job re-formed without node {other.address} (ranks 2, 3): 2 rank(s) on 1 node(s)"):
        # A checkpointing job keeps a run folder: a restart line ends with where the new attempt's logs are.
        found = re.search(rf"^launcher: {re.escape(line)}(, logs in \S+)?$", err, re.M)
        assert found, f"{line!r} not in:\n{err[-3000:]}"
    starts = set(re.findall(r"attempt (\d) world (\d) starts at step (\d+)", out))
    assert starts == {("0", "2", "0"), ("0", "4", "3"), ("1", "2", "6")}, out  # each from the last checkpoint
    (final,) = re.findall(r"final (\[.*\])", out)
    assert ast.literal_eval(final) == pytest.approx(expected(STEPS), rel=1e-12, abs=1e-12)
