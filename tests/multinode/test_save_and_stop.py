"""Save and stop across nodes: the request sent to one node's launcher reaches the ranks of every node.

With elastic's c10d rendezvous the workers do not use the rendezvous's store at the endpoint but one that
the first node serves them (elastic's shared store): the request must be set there, and read from there,
whichever node received it. 2 nodes x 1 rank, about 15 s here.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from tests.multinode.conftest import SAMPLES, StartOnNode
from tests.multinode.netns import Node
from tests.multinode.test_two_nodes import PORT, run_together

pytestmark = [pytest.mark.multinode, pytest.mark.timeout(180)]
HOLD = 3


def _wait_for_line(process: subprocess.Popen[str], text: str) -> None:
    """Read the launcher's stdout until a line holds ``text`` (the pytest timeout bounds it)."""
    assert process.stdout is not None
    for line in process.stdout:
        if text in line:
            return
    _, err = process.communicate(timeout=30)
    raise AssertionError(f"the launcher's output ended without {text!r}: exit {process.returncode}, {err}")


@pytest.mark.parametrize("signalled", [0, 1], ids=["store host", "other node"])
def test_a_save_and_stop_request_to_one_node_stops_every_node_after_the_checkpoint_with_exit_75(
        signalled: int, nodes: list[Node], on_node: StartOnNode, tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text(f"entrypoint: {SAMPLES / 'resumable.py'}:main\n"
                   f"kwargs: {{steps: 1000, hold_at: {HOLD}}}\n"
                   f"checkpoint: {{dir: {tmp_path / 'checkpoints'}, every_steps: 1000}}\n")
    args = ["--nnodes", 2, "--nprocs", 1, "--rdzv-backend", "c10d", "--rdzv-endpoint", f"{nodes[0].address}:{PORT}",
            job]
    launched = [on_node(node, args, cwd=tmp_path) for node in nodes[:2]]  # the job's run folders go to its runs/
    _wait_for_line(launched[signalled], f"holding at step {HOLD}")
    launched[signalled].send_signal(signal.SIGUSR1)
    for code, err in run_together(launched):
        assert code == 75, err  # errors.EXIT_STOPPED: every rank saved, then stopped
        assert f"stopped after the checkpoint of step {HOLD}" in err, err
    assert (tmp_path / "checkpoints").is_dir()
