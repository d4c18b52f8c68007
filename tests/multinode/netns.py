"""Several "nodes" on one machine: network namespaces joined by a bridge (root only).

Each network gets names and a /24 subnet of 10.0.0.0/8 unique to this process and call, so that
parallel test processes (xdist) and other users of namespaces on the machine never meet. A namespace
has no default route: its processes reach only the addresses of the network's nodes.
Never imports torch.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import os
import signal
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

_counter = itertools.count()


class NetnsUnavailable(RuntimeError):
    """Namespaces or the bridge could not be created here (not root, no iproute2, no kernel support)."""


@dataclass(frozen=True)
class Node:
    name: str  # the network namespace
    address: str  # its IPv4 address on the bridge

    def argv(self, command: Sequence[str]) -> list[str]:
        """``command`` run inside this node's namespace (the environment passes through)."""
        return ["ip", "netns", "exec", self.name, *command]


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise NetnsUnavailable(f"ip {' '.join(args)}: {done.stderr.strip() or f'exit {done.returncode}'}")


def _used_networks() -> list[ipaddress.IPv4Network]:
    done = subprocess.run(["ip", "-4", "-o", "route", "show", "table", "all"], capture_output=True, text=True,
                          timeout=30)
    networks = []
    for line in done.stdout.splitlines():
        word = line.split()[0] if line.split() else ""
        if word and word[0].isdigit():
            with contextlib.suppress(ValueError):
                networks.append(ipaddress.IPv4Network(word, strict=False))
    return networks


def _free_subnet(seed: int) -> ipaddress.IPv4Network:
    """A /24 in 10.150.0.0-10.249.255.0 derived from ``seed``, skipping any the host already routes."""
    used = _used_networks()
    for step in range(100 * 256):
        index = (seed + step * 7919) % (100 * 256)
        subnet = ipaddress.IPv4Network(f"10.{150 + index // 256}.{index % 256}.0/24")
        if not any(subnet.overlaps(other) for other in used):
            return subnet
    raise NetnsUnavailable("no free /24 left in 10.150.0.0/8-10.249.255.0")


@dataclass(frozen=True)
class Network:
    bridge: str
    subnet: str
    nodes: tuple[Node, ...]


def create(count: int) -> Network:
    """``count`` namespaces on a new bridge; on failure, whatever was made is deleted and NetnsUnavailable raised."""
    if os.geteuid() != 0:
        raise NetnsUnavailable("network namespaces need root")
    pid, serial = os.getpid(), next(_counter)
    tag = f"{pid}c{serial}"  # interface names: at most 15 characters
    subnet = _free_subnet(pid * 64 + serial)
    hosts = list(subnet.hosts())
    nodes = tuple(Node(f"mn{tag}n{i}", str(hosts[i])) for i in range(count))
    network = Network(f"mb{tag}", str(subnet), nodes)
    try:
        _ip("link", "add", network.bridge, "type", "bridge")
        _ip("link", "set", network.bridge, "up")
        for i, node in enumerate(nodes):
            veth = f"mv{tag}n{i}"
            _ip("netns", "add", node.name)
            _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", node.name)
            _ip("link", "set", veth, "master", network.bridge, "up")
            _ip("-n", node.name, "addr", "add", f"{node.address}/{subnet.prefixlen}", "dev", "eth0")
            _ip("-n", node.name, "link", "set", "eth0", "up")
            _ip("-n", node.name, "link", "set", "lo", "up")
    except (NetnsUnavailable, OSError, subprocess.SubprocessError) as error:
        delete(network)
        raise NetnsUnavailable(str(error)) from error
    return network


def pids_inside(node: Node) -> list[int]:
    """Processes still living in ``node``'s namespace."""
    done = subprocess.run(["ip", "netns", "pids", node.name], capture_output=True, text=True, timeout=30)
    return [int(word) for word in done.stdout.split()]


def kill_inside(node: Node) -> list[int]:
    """SIGKILL every process in ``node``'s namespace; returns their pids."""
    pids = pids_inside(node)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids


def delete(network: Network) -> None:
    """Delete the namespaces and the bridge (the veth pairs go with their namespace); ignores what is absent."""
    for node in network.nodes:
        subprocess.run(["ip", "netns", "del", node.name], capture_output=True, timeout=30)
    subprocess.run(["ip", "link", "del", network.bridge], capture_output=True, timeout=30)


def leftovers(network: Network) -> list[str]:
    """Names of this network's namespaces and bridge that still exist."""
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30).stdout.split()
    left = [node.name for node in network.nodes if node.name in names]
    if subprocess.run(["ip", "link", "show", network.bridge], capture_output=True, timeout=30).returncode == 0:
        left.append(network.bridge)
    return left


@contextlib.contextmanager
def network(count: int) -> Iterator[Network]:
    made = create(count)
    try:
        yield made
    finally:
        delete(made)
