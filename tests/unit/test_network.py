"""How this host reaches the rendezvous host: the local address, its interface, whether the host is this one."""

from __future__ import annotations

import pytest

from launcher.network import route_to

pytestmark = pytest.mark.timeout(30)


def test_loopback_is_reached_from_loopback_and_is_this_host() -> None:
    route = route_to("127.0.0.1")
    assert route is not None
    assert (route.local_address, route.interface, route.peer_is_local) == ("127.0.0.1", "lo", True)


def test_the_local_address_asked_for_wins() -> None:
    route = route_to("127.0.0.2", local_addr="127.0.0.1")
    assert route is not None and route.local_address == "127.0.0.1" and route.interface == "lo"


def test_a_name_that_does_not_resolve_has_no_route() -> None:
    assert route_to("no-such-host.invalid") is None
