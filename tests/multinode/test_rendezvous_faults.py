"""A node waiting for the others: stopped by SIGTERM in time, by SIGKILL of its group without a trace;
a rendezvous that cannot happen fails with one line; the dry run names the interface it chose."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.multinode import netns
from tests.multinode.conftest import StartOnNode
from tests.multinode.netns import Node

pytestmark = [pytest.mark.multinode, pytest.mark.timeout(60)]
PORT = 29500
GRACE = 3  # the launcher's default grace period, --shutdown-timeout
IN_THE_LAUNCHER = ", agent in the launcher"


def _rendezvous_args(kind: str, nodes: list[Node]) -> list[object]:
    """Two nodes of which only one is started: ``kind`` says which, and how they meet."""
    if kind.startswith("c10d"):
        return ["--nnodes", 2, "--nprocs", 2, "--rdzv-backend", "c10d", "--rdzv-endpoint", f"{nodes[0].address}:{PORT}"]
    rank = 0 if kind.startswith("static store host") else 1
    return ["--nnodes=2", f"--node-rank={rank}", "--nproc-per-node=2", f"--master-addr={nodes[0].address}",
            f"--master-port={PORT}"]


def _waiting(kind: str, nodes: list[Node], on_node: StartOnNode, tmp_path: Path) -> subprocess.Popen[str]:
    """One node's launcher, returned once its agent waits in the rendezvous (its trace says so)."""
    trace = tmp_path / "trace"
    trace.mkdir()
    (tmp_path / "tmp").mkdir()
    node = nodes[1] if kind == "static client" else nodes[0]
    env = {"LAUNCHER_TRACE_DIR": str(trace), "TMPDIR": str(tmp_path / "tmp")}
    if kind.endswith(IN_THE_LAUNCHER):
        env["PET_START_METHOD"] = "spawn"  # no torch-preloaded server: the agent runs in the launcher itself
    process = on_node(node, [*_rendezvous_args(kind, nodes), "env_dump.py", tmp_path / "out"], env=env)
    deadline = time.monotonic() + 40
    while not any("agent: rendezvous start" in f.read_text() for f in trace.glob("marks-*.tsv")):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the agent never reached the rendezvous"
        time.sleep(0.05)
    return process


def _listening(node: Node) -> str:
    return subprocess.run(node.argv(["ss", "-Htln"]), capture_output=True, text=True, timeout=30).stdout.strip()


@pytest.mark.parametrize("kind", ["static store host", "static client", "c10d", f"c10d{IN_THE_LAUNCHER}"])
def test_sigterm_while_waiting_for_the_other_nodes_exits_143_within_the_grace_period(
        kind: str, nodes: list[Node], on_node: StartOnNode, tmp_path: Path) -> None:
    process = _waiting(kind, nodes, on_node, tmp_path)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=GRACE + 5)  # TimeoutExpired: it ignored the signal
    assert process.returncode == 143, err
    assert "Traceback" not in err and "Bad file descriptor" not in err, err
    assert "stopped by SIGTERM" in err
    assert not os.listdir(tmp_path / "tmp")


def test_sigterm_while_waiting_for_the_other_nodes_to_finish_exits_143_within_the_grace_period(
        nodes: list[Node], on_node: StartOnNode, tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    trace.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    first = on_node(nodes[0], [*_rendezvous_args("static store host", nodes), "node_waits.py", out],
                    env={"LAUNCHER_TRACE_DIR": str(trace)})
    second = on_node(nodes[1], [*_rendezvous_args("static client", nodes), "node_waits.py", out])
    deadline = time.monotonic() + 60
    while not any("agent: every worker returned" in f.read_text() for f in trace.glob("marks-*.tsv")):
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "the first node's workers never finished"
        time.sleep(0.05)
    first.send_signal(signal.SIGTERM)  # its agent waits in elastic's exit barrier (a store wait) for the second node
    _, err = first.communicate(timeout=GRACE + 5)
    assert first.returncode == 143, err
    assert "Traceback" not in err, err
    (out / "release").touch()
    second.communicate(timeout=60)


@pytest.mark.parametrize("kind", ["static store host", "c10d"])
def test_sigkill_of_the_process_group_while_waiting_leaves_nothing(kind: str, nodes: list[Node],
                                                                     on_node: StartOnNode, tmp_path: Path) -> None:
    process = _waiting(kind, nodes, on_node, tmp_path)
    assert f":{PORT}" in _listening(nodes[0])  # the store the node serves
    os.killpg(process.pid, signal.SIGKILL)  # as a CI runner or a scheduler stops a job
    process.communicate(timeout=30)
    deadline = time.monotonic() + 20
    while netns.pids_inside(nodes[0]) and time.monotonic() < deadline:  # the reaper's grace, then its sweep
        time.sleep(0.05)
    assert not netns.pids_inside(nodes[0]), "launcher-agent (or a helper) outlived its launcher"
    assert _listening(nodes[0]) == ""
    assert not os.listdir(tmp_path / "tmp")


@pytest.mark.parametrize("where", ["nobody listens", "no such host"])
def test_a_rendezvous_that_cannot_happen_fails_with_one_line_within_the_timeout(
        where: str, nodes: list[Node], on_node: StartOnNode, tmp_path: Path) -> None:
    host = nodes[2].address if where == "nobody listens" else str(nodes[2].address).rsplit(".", 1)[0] + ".250"
    endpoint = f"{host}:{PORT}"
    process = on_node(nodes[1], ["--nnodes", 2, "--nprocs", 2, "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint,
                                 "--rdzv-conf", "join_timeout=3", "env_dump.py", tmp_path / "out"])
    _, err = process.communicate(timeout=40)
    assert process.returncode == 2, err
    lines = [line for line in err.splitlines() if line.startswith("launcher:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert endpoint in lines[0] and "3 s" in lines[0] and "join_timeout=3" in lines[0]


def test_the_dry_run_of_a_node_names_the_interface_that_reaches_the_rendezvous_host(
        nodes: list[Node], run_env: dict[str, str]) -> None:
    def dry_run(node: Node, *extra: str, env: dict[str, str] | None = None) -> str:
        args = ["--nnodes", "2", "--nprocs", "2", "--rdzv-backend", "c10d", "--rdzv-endpoint",
                f"{nodes[0].address}:{PORT}", *extra, "--dry-run", "env_dump.py", "out"]
        done = subprocess.run(node.argv([sys.executable, "-m", "launcher", *args]), capture_output=True, text=True,
                              env={**run_env, **(env or {})}, cwd=Path(__file__).resolve().parent.parent / "samples",
                              timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    other = dry_run(nodes[1])
    assert (f"network       GLOO_SOCKET_IFNAME=eth0, NCCL_SOCKET_IFNAME=eth0 (eth0 holds {nodes[1].address}, "
            f"the address that reaches the rendezvous host {nodes[0].address})") in other
    assert "    GLOO_SOCKET_IFNAME=eth0" in other and "hosts the rendezvous store" not in other
    host = dry_run(nodes[0])
    assert f"this node hosts the rendezvous store: {nodes[0].address} is one of its addresses" in host
    assert "NCCL_SOCKET_IFNAME=lo (lo holds 127.0.0.1, --local-addr 127.0.0.1)" in dry_run(
        nodes[1], "--local-addr", "127.0.0.1")
    kept = dry_run(nodes[1], env={"GLOO_SOCKET_IFNAME": "lo"})
    assert "network       NCCL_SOCKET_IFNAME=eth0 (" in kept and "GLOO_SOCKET_IFNAME kept as the user set it" in kept
