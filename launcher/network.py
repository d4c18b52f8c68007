"""Facts about this host's network: which local address and interface reach the rendezvous host.

On a machine with several interfaces, gloo and NCCL pick one by themselves, often
not the one the other nodes can reach; the plan names it for them
(``GLOO_SOCKET_IFNAME``/``NCCL_SOCKET_IFNAME``) from these facts. The address is
the one the kernel would send from (a UDP ``connect`` sends no packet), or the
user's ``--local-addr``. The rendezvous host's name is looked up once, with a
timeout (``resolve``), so that a name that does not resolve is one line before
the launch, not a minute of torch's connect retries. Standard library and psutil
only: no torch, nothing sent on the network but the name look-ups. Imports
``socket`` only when asked (multi-node jobs): start-up stays light.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from launcher.interruptible import call_interruptibly

RESOLVE_TIMEOUT = 5.0  # seconds: a host name the resolver has not answered for by then is reported, not waited for


@dataclass(frozen=True)
class Resolution:
    """A host name and the addresses it resolves to here."""

    host: str
    addresses: tuple[str, ...]  # empty: it does not resolve (see ``problem``)
    problem: str = ""  # why not: the resolver's own words, or that it did not answer in time
    timed_out: bool = False


@dataclass(frozen=True)
class Route:
    """How this host reaches the rendezvous host."""

    peer: str  # the rendezvous host, as written
    local_address: str  # this host's address that reaches it (or --local-addr)
    interface: str | None  # the interface that holds that address; None: not found
    peer_is_local: bool  # the rendezvous host is this machine (one of its addresses, or loopback)
    peer_named_local: bool = False  # elastic sees it so too: loopback, this host's name, or what that resolves to


def resolve(host: str, timeout: float = RESOLVE_TIMEOUT) -> Resolution:
    """``host``'s addresses (``getaddrinfo``), waited for at most ``timeout`` seconds."""
    import socket

    try:
        found = call_interruptibly(lambda: socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM), timeout,
                                   f"resolve {host}")
    except TimeoutError:
        return Resolution(host, (), f"no answer from the resolver within {timeout:g} s", timed_out=True)
    except (OSError, UnicodeError) as error:
        return Resolution(host, (), getattr(error, "strerror", None) or str(error))
    return Resolution(host, tuple(dict.fromkeys(str(info[4][0]) for info in found)))


def _resolve(host: str) -> list[str]:
    return list(resolve(host).addresses)


def _interface_addresses() -> dict[str, str]:
    """Every address of this host's interfaces → the interface's name."""
    import socket

    import psutil

    addresses: dict[str, str] = {}
    for name, entries in psutil.net_if_addrs().items():
        for entry in entries:
            if entry.family in (socket.AF_INET, socket.AF_INET6):
                addresses.setdefault(entry.address.split("%")[0], name)
    return addresses


def _source_address(peer: str) -> str | None:
    import socket

    family = socket.AF_INET6 if ":" in peer else socket.AF_INET
    with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect((peer, 9))  # UDP: picks the route and the source address, sends nothing
        return str(probe.getsockname()[0])
    return None


def route_to(peer: Resolution, local_addr: str | None = None) -> Route | None:
    """How this host reaches ``peer``: None when its name does not resolve or no route leads there."""
    import ipaddress

    host, peers = peer.host, list(peer.addresses)
    if not peers:
        return None
    interfaces = _interface_addresses()
    given = _resolve(local_addr) if local_addr else []
    source = given[0] if given else _source_address(peers[0])
    if source is None:
        return None
    is_local = any(ipaddress.ip_address(p).is_loopback or p in interfaces for p in peers)
    return Route(host, source, interfaces.get(source), is_local, _named_local(host, peers))


def _named_local(host: str, peers: list[str]) -> bool:
    """Whether elastic's c10d backend finds by itself that ``host`` is this machine (its host-name check)."""
    import ipaddress
    import socket

    if host == "localhost" or any(ipaddress.ip_address(p).is_loopback for p in peers):
        return True
    name = socket.gethostname()
    return host == name or any(p in peers for p in _resolve(name))
