"""A node's launcher SIGKILLed mid-run: the job re-forms with the node left and ends from the checkpoint.

``--nnodes 1:2 --max-restarts 1`` on two nodes (2 ranks each, c10d rendezvous hosted by the first),
checkpoints in one folder that both nodes write (one filesystem: a shared one). The job
(``samples/elastic_steps.py``) says when the checkpoint of step ``HOLD_AT`` is complete and then
waits outside torch, so that only the launcher can tell a node went away (its rendezvous keep-alive
stops). The second node's launcher is then SIGKILLed: the first names that node and its ranks,
re-forms alone, resumes from that checkpoint on 2 ranks and must end with the parameters that the
uninterrupted training gives (computed by the sample itself, in plain Python). About 30 s here.
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
STEPS, HOLD_AT, NPROCS = 12, 5, 2
# Fast keep-alive and last call: a node is dropped 4 s after its last heartbeat, a round closes 3 s after
# its minimum is reached (elastic's defaults: 15 s and 30 s).
RDZV_CONF = "keep_alive_interval=1,keep_alive_max_attempt=4,last_call_timeout=3,join_timeout=60"

pytestmark = [pytest.mark.multinode, pytest.mark.timeout(240)]


def _job(folder: Path, marker: Path) -> Path:
    job = folder / "job.yaml"
    job.write_text(
        f"entrypoint: {SAMPLES / 'elastic_steps.py'}:main\n"
        f"kwargs: {{steps: {STEPS}, hold_at: {HOLD_AT}, hold_world: {2 * NPROCS}, marker: '{marker}', "
        "hold_in: sleep}\n"
        f"checkpoint: {{dir: {folder / 'checkpoints'}, every_steps: 1, async: false}}\n"
    )
    return job


def _wait_for(marker: Path, processes: list[subprocess.Popen[str]], timeout: float) -> None:
    """Until the job writes ``marker``; fails if a launcher ends first."""
    deadline = time.monotonic() + timeout
    while not marker.exists():
        ended = [p.args for p in processes if p.poll() is not None]
        assert not ended, f"a launcher ended before the job reached step {HOLD_AT}: {ended}"
        assert time.monotonic() < deadline, f"the job did not reach step {HOLD_AT} in {timeout} s"
        time.sleep(0.05)


def test_a_node_killed_mid_run_leaves_and_the_job_resumes_on_the_others(
        nodes: list[Node], on_node: StartOnNode, tmp_path: Path) -> None:
    host, other = nodes[0], nodes[1]
    marker = tmp_path / "at-hold"
    job = _job(tmp_path, marker)
    common = ["--nnodes", "1:2", "--nprocs", NPROCS, "--max-restarts", 1, "--rdzv-backend", "c10d",
              "--rdzv-endpoint", f"{host.address}:29400", "--rdzv-id", "node-loss"]
    env = {"GLOO_SOCKET_IFNAME": "eth0"}
    first = on_node(host, [*common, "--rdzv-conf", f"is_host=1,{RDZV_CONF}", "--local-addr", host.address, job],
                    cwd=tmp_path, env=env)
    second = on_node(other, [*common, "--rdzv-conf", RDZV_CONF, "--local-addr", other.address, job],
                     cwd=tmp_path, env=env)
    _wait_for(marker, [first, second], timeout=120)
    assert marker.read_text().strip() == str(2 * NPROCS)  # both nodes were in when it held

    second.kill()  # the launcher alone, SIGKILL: its workers and agent go with it, the rendezvous stays open
    second.communicate(timeout=60)
    try:
        out, err = first.communicate(timeout=120)
    except subprocess.TimeoutExpired as late:
        first.kill()
        pytest.fail(f"the first node did not end after the second was killed:\n{late.stdout!r}\n{late.stderr!r}")
    assert first.returncode == 0, err[-3000:]
    assert second.returncode == -9

    gone = f"node {other.address} (ranks 2, 3) left the rendezvous; restarting the workers with the nodes left"
    assert gone in err, err[-3000:]
    assert f"the job re-formed without node {other.address} (ranks 2, 3): 2 rank(s) on 1 node(s)" in err, err[-3000:]
    starts = set(re.findall(r"attempt (\d) world (\d) starts at step (\d+)", out))
    assert starts == {("0", "4", "0"), ("1", "2", str(HOLD_AT))}, out  # resumed on 2 ranks from the checkpoint
    (final,) = re.findall(r"final (\[.*\])", out)
    assert ast.literal_eval(final) == pytest.approx(expected(STEPS), rel=1e-12, abs=1e-12)
