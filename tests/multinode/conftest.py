"""Fixtures for jobs across several "nodes": network namespaces joined by a bridge (root only).

``nodes`` gives three nodes with their own address; afterwards it fails the test if any process is
still living in one of them, and deletes the namespaces and the bridge even when the test failed.
Where namespaces cannot be made, the tests fail with the reason under CI=true and are skipped elsewhere.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

import pytest

from tests.multinode import netns
from tests.multinode.netns import Node

__all__ = ["Node", "StartOnNode", "nodes", "on_node"]

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
NODE_COUNT = 3


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.multinode)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"multinode: cannot create network namespaces: {reason}")
    pytest.skip(f"cannot create network namespaces: {reason}")


@pytest.fixture
def nodes() -> Iterator[list[Node]]:
    """Three namespaces on a bridge with a /24 of their own; nothing of them is left afterwards."""
    try:
        made = netns.create(NODE_COUNT)
    except netns.NetnsUnavailable as error:
        _unavailable(str(error))
        raise  # not reached
    try:
        yield list(made.nodes)
        deadline = time.monotonic() + 10
        while any(netns.pids_inside(node) for node in made.nodes) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = {node.name: netns.kill_inside(node) for node in made.nodes}
        left = {name: pids for name, pids in left.items() if pids}
        if left:
            pytest.fail(f"processes left in the nodes: {left}")
    finally:
        for node in made.nodes:
            netns.kill_inside(node)
        netns.delete(made)
        remaining = netns.leftovers(made)
        if remaining:
            pytest.fail(f"namespaces or bridge left: {remaining}")


class StartOnNode(Protocol):
    def __call__(self, node: Node, args: Sequence[object], cwd: Path = ..., env: dict[str, str] | None = None,
                 module: str = "launcher") -> subprocess.Popen[str]: ...


@pytest.fixture
def on_node(run_env: dict[str, str]) -> Iterator[StartOnNode]:
    """Start ``python -m launcher ARGS`` (or ``module``) inside a node: returns the Popen (text pipes).

    Every process is tagged (``run_env``), so the ``token`` fixture fails the test if one outlives it;
    those still running at teardown are killed.
    """
    started: list[subprocess.Popen[str]] = []

    def start(node: Node, args: Sequence[object], cwd: Path = SAMPLES, env: dict[str, str] | None = None,
              module: str = "launcher") -> subprocess.Popen[str]:
        command = node.argv([sys.executable, "-m", module, *map(str, args)])
        # A session of its own: a test can signal the node's whole process group, as a terminal would.
        process = subprocess.Popen(command, cwd=cwd, env={**run_env, **(env or {})}, text=True,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   start_new_session=True)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()
