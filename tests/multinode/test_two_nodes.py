"""A 2-node x 2-rank gloo job across network namespaces: the env contract on every rank, DDP across nodes.

Started the torchrun way (static rendezvous, ``--master-addr``, no run id), also with a torchrun node
beside a launcher node, and with the c10d rendezvous (the same command on every node).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

from tests.multinode.conftest import StartOnNode
from tests.multinode.netns import Node

pytestmark = [pytest.mark.multinode, pytest.mark.timeout(90)]
NPROCS = 2
PORT = 29500  # the namespaces are this test's own: nothing else listens there


def static_args(node_rank: int, master: Node) -> list[object]:
    return ["--nnodes=2", f"--node-rank={node_rank}", f"--nproc-per-node={NPROCS}", f"--master-addr={master.address}",
            f"--master-port={PORT}"]


def c10d_args(host: Node) -> list[object]:
    return ["--nnodes", 2, "--nprocs", NPROCS, "--rdzv-backend", "c10d", "--rdzv-endpoint", f"{host.address}:{PORT}"]


def run_together(processes: list[subprocess.Popen[str]], timeout: float = 75) -> list[tuple[int, str]]:
    """Wait for every node's launcher: (exit code, stderr) of each."""
    done = []
    for process in processes:
        _, err = process.communicate(timeout=timeout)
        done.append((process.returncode, err))
    return done


def node_env(tmp_path: Path, name: str) -> dict[str, str]:
    """A TMPDIR of the node's own, so that the test sees that the launch left nothing there."""
    folder = tmp_path / f"tmp-{name}"
    folder.mkdir()
    return {"TMPDIR": str(folder)}


def assert_contract(out: Path, nodes: list[Node], master_addr: str | None) -> None:
    world = 2 * NPROCS
    seen = [json.loads((out / f"rank{rank}.json").read_text())["env"] for rank in range(world)]
    for rank, env in enumerate(seen):
        node = nodes[rank // NPROCS]
        assert (env["RANK"], env["WORLD_SIZE"], env["LOCAL_RANK"], env["LOCAL_WORLD_SIZE"]) == (
            str(rank), str(world), str(rank % NPROCS), str(NPROCS))
        assert (env["GROUP_RANK"], env["GROUP_WORLD_SIZE"]) == (str(rank // NPROCS), "2")
        assert (env["ROLE_RANK"], env["ROLE_WORLD_SIZE"]) == (str(rank), str(world))
        assert env["TORCHELASTIC_RUN_ID"] == "none"  # agreed without being told
        assert env["MASTER_PORT"].isdigit()
        if master_addr is not None:
            assert env["MASTER_ADDR"] == master_addr
        else:  # chosen by the rendezvous: the first node's address, which the other node reaches
            assert env["MASTER_ADDR"] == seen[0]["MASTER_ADDR"] and env["MASTER_ADDR"] in {n.address for n in nodes}
        if "torchrun" not in env.get("NODE_KIND", ""):
            assert env["GLOO_SOCKET_IFNAME"] == env["NCCL_SOCKET_IFNAME"] == "eth0", node


@pytest.mark.parametrize("second", ["launcher", "torchrun"])
def test_static_job_started_the_torchrun_way(second: str, nodes: list[Node], on_node: StartOnNode,
                                             tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = on_node(nodes[0], [*static_args(0, nodes[0]), "env_dump.py", out], env=node_env(tmp_path, "0"))
    module = "launcher" if second == "launcher" else "torch.distributed.run"
    env = {**node_env(tmp_path, "1"), "NODE_KIND": second, **({"GLOO_SOCKET_IFNAME": "eth0"} if second == "torchrun"
                                                              else {})}
    other = on_node(nodes[1], [*static_args(1, nodes[0]), "env_dump.py", out], env=env, module=module)
    for code, err in run_together([first, other]):
        assert code == 0, err
    assert_contract(out, nodes[:2], master_addr=nodes[0].address)
    assert not os.listdir(tmp_path / "tmp-0")  # nothing left in TMPDIR


def test_c10d_job_with_the_same_command_on_every_node(nodes: list[Node], on_node: StartOnNode,
                                                      tmp_path: Path) -> None:
    out = tmp_path / "out"
    launched = [on_node(node, [*c10d_args(nodes[0]), "env_dump.py", out], env=node_env(tmp_path, str(i)))
                for i, node in enumerate(nodes[:2])]
    for code, err in run_together(launched):
        assert code == 0, err
    assert_contract(out, nodes[:2], master_addr=None)
    assert not os.listdir(tmp_path / "tmp-0") and not os.listdir(tmp_path / "tmp-1")


@pytest.mark.parametrize("backend", ["static", "c10d"])
def test_ddp_gives_identical_parameters_on_every_rank_of_both_nodes(backend: str, nodes: list[Node],
                                                                    on_node: StartOnNode, tmp_path: Path) -> None:
    launched = []
    for i, node in enumerate(nodes[:2]):
        args = static_args(i, nodes[0]) if backend == "static" else c10d_args(nodes[0])
        launched.append(on_node(node, [*args, "ddp_params.py", tmp_path]))
    for code, err in run_together(launched):
        assert code == 0, err
    params = [torch.load(tmp_path / f"params{rank}.pt") for rank in range(2 * NPROCS)]
    for other in params[1:]:
        assert torch.equal(params[0], other)
