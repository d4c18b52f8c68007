"""The fixture itself: nodes reach each other by their addresses, and nothing outside their subnet."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.multinode.netns import Node

pytestmark = [pytest.mark.multinode, pytest.mark.timeout(60)]

LISTEN = """
import socket, sys
server = socket.create_server((sys.argv[1], 0))
print(server.getsockname()[1], flush=True)
connection, _ = server.accept()
connection.sendall(b"hello")
connection.close()
"""
CONNECT = """
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5) as connection:
    print(connection.recv(5).decode())
"""


def test_nodes_reach_each_other_and_nothing_else(nodes: list[Node]) -> None:
    assert len({node.name for node in nodes}) == len({node.address for node in nodes}) == 3
    first, second = nodes[0], nodes[1]
    server = subprocess.Popen(first.argv([sys.executable, "-c", LISTEN, first.address]), stdout=subprocess.PIPE,
                              text=True)
    assert server.stdout is not None
    port = server.stdout.readline().strip()
    client = subprocess.run(second.argv([sys.executable, "-c", CONNECT, first.address, port]),
                            capture_output=True, text=True, timeout=30)
    server.wait(timeout=30)
    assert client.stdout.strip() == "hello", client.stderr
    routes = subprocess.run(first.argv(["ip", "-4", "route"]), capture_output=True, text=True).stdout
    assert "default" not in routes and len(routes.splitlines()) == 1
