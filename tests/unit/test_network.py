"""How this host reaches the rendezvous host: the local address, its interface, whether the host is this one."""

from __future__ import annotations

import pytest

from launcher.network import resolve, route_to

pytestmark = pytest.mark.timeout(30)


def test_loopback_is_reached_from_loopback_and_is_this_host() -> None:
    route = route_to(resolve("127.0.0.1"))
    assert route is not None
    assert (route.local_address, route.interface, route.peer_is_local) == ("127.0.0.1", "lo", True)
    assert route.peer_named_local  # elastic sees loopback as this host too, and decides who serves the store


def test_the_local_address_asked_for_wins() -> None:
    route = route_to(resolve("127.0.0.2"), local_addr="127.0.0.1")
    assert route is not None and route.local_address == "127.0.0.1" and route.interface == "lo"


def test_a_name_that_does_not_resolve_has_no_route_and_says_why() -> None:
    found = resolve("no-such-host.invalid")
    assert found.addresses == () and found.problem and not found.timed_out
    assert route_to(found) is None


def test_a_resolver_that_does_not_answer_is_not_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket
    import threading

    release = threading.Event()
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: release.wait(10))
    try:
        found = resolve("slow.example", timeout=0.2)
    finally:
        release.set()
    assert found.timed_out and found.addresses == () and "within 0.2 s" in found.problem
