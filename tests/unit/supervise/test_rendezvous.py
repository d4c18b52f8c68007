"""The static rendezvous's store: its socket on the master address only, or on every interface where other
hosts connect (one SLURM task per rank on several nodes); node 0 keeps it until the other nodes are done."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

import pytest

from launcher.plan.model import RendezvousPlan
from launcher.supervise import rendezvous
from launcher.supervise.rendezvous import BoundStaticRendezvous, handler_for

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(("listen_all", "bound"), [(False, {"127.0.0.1"}), (True, {"::", "0.0.0.0"})])
def test_the_store_socket_binds_as_planned(listen_all: bool, bound: set[str]) -> None:
    plan = RendezvousPlan("static", "127.0.0.1", None, "127.0.0.1", "run", 2, 2, 0, {"rank": "0"}, listen_all)
    handler = handler_for(plan, None)
    assert isinstance(handler, BoundStaticRendezvous)
    with handler._listen(0) as listener:
        assert listener.getsockname()[0] in bound


def _pair(monkeypatch: pytest.MonkeyPatch) -> list[BoundStaticRendezvous]:
    """Node 0 and node 1 of a two-node static rendezvous, both past their first round."""
    monkeypatch.setattr(rendezvous, "LEAVE_WAIT", 0.5)
    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    nodes = [BoundStaticRendezvous("127.0.0.1", port, rank, 2, "run", 30) for rank in (0, 1)]
    with ThreadPoolExecutor(2) as pool:  # node 0's store waits for node 1 to connect
        list(pool.map(lambda node: node.next_rendezvous(), nodes))
    return nodes


def test_node_0_keeps_its_store_until_the_others_left(monkeypatch: pytest.MonkeyPatch) -> None:
    host, other = _pair(monkeypatch)
    store = host._store
    assert store is not None
    assert other.shutdown() and other._store is None
    assert store.check([rendezvous.DOOR_KEY])  # what node 0 waits for
    assert host.shutdown() and host._store is None


def test_node_0_does_not_wait_forever_for_a_node_that_never_leaves(monkeypatch: pytest.MonkeyPatch) -> None:
    host, _ = _pair(monkeypatch)
    assert host.shutdown() and host._store is None  # LEAVE_WAIT ran out: no error
