"""torchrun's static rendezvous, with a fresh store per round, bound to the master address only.

Elastic's ``StaticTCPRendezvous`` creates one ``TCPStore`` that listens on every
interface and keeps it for the whole job. Workers of a restarted attempt then
connect to the previous attempt's store: torch's ``env://`` rendezvous adds no
prefix per attempt, so they read the dead ranks' keys (gloo's peer addresses,
barrier counters) and hang or fail with "connectFullMesh ... Connection
refused". Here each round gets a new store on the same port (the agent lets go
of the old one first, see ``LauncherAgent._rendezvous``), and node 0 binds its
socket to ``master_addr`` itself (port 0 means a free port, so parallel runs
never clash) and hands it to the store, which owns it from then on. Where other
hosts must reach it (``RendezvousPlan.listen_all``: one SLURM task per rank on
several nodes, whose first node's name may resolve to a loopback address there),
it binds every interface instead.
Node 0's store outlives the other nodes' use of it: each of them says so as it
shuts down, and node 0 waits for that (``LEAVE_WAIT`` at most) before it lets
its store go. Else a node still reading elastic's exit barrier when node 0 exits
loses the reply and prints a C++ "recvValueWithTimeout failed" trace at the end
of a job that succeeded (seen in 1 of 8 runs of 4 SLURM tasks on 2 nodes).
Registered in elastic's handler registry as ``launcher-static`` (registering
the same creator again is a no-op); everything else (use_agent_store, run ids,
restarts) is elastic's own. Imports torch: launch side, used by the agent only.
"""

from __future__ import annotations

import datetime
import errno
import socket
from collections.abc import Callable
from typing import TypeVar

from torch.distributed import DistError, TCPStore  # type: ignore[attr-defined]
from torch.distributed.elastic.rendezvous import (
    RendezvousError,
    RendezvousGracefulExitError,
    RendezvousHandler,
    RendezvousInfo,
    RendezvousParameters,
    rendezvous_handler_registry,
)
from torch.distributed.elastic.rendezvous.static_tcp_rendezvous import StaticTCPRendezvous
from torch.distributed.elastic.rendezvous.utils import parse_rendezvous_endpoint

from launcher.errors import PreflightError, RendezvousFailed
from launcher.hints import FIX_PORT
from launcher.interruptible import call_interruptibly
from launcher.plan.model import RendezvousPlan

BACKEND_NAME = "launcher-static"
LISTEN_ALL = "listen_all"  # our backend's option: RendezvousPlan.listen_all
LEFT_KEY = "launcher/nodes_left"  # nodes other than 0 that are done with the store
DOOR_KEY = "launcher/door"  # set by the last of them: node 0 may let its store go
LEAVE_WAIT = 3.0  # seconds node 0 waits for the others (a failed job's other nodes may never get there)
DEFAULT_TIMEOUT = 600  # seconds: elastic's default for the static rendezvous and for joining a c10d one
T = TypeVar("T")


class BoundStaticRendezvous(StaticTCPRendezvous):
    """Static rendezvous with a new store each round, listening on ``master_addr`` only."""

    def __init__(self, master_addr: str, master_port: int, rank: int, world_size: int, run_id: str,
                 timeout: int, listen_all: bool = False) -> None:
        super().__init__(master_addr, master_port, rank, world_size, run_id, timeout)
        self._port_fixed = master_port != 0  # asked for: every round must use it
        self._listen_all = listen_all

    def get_backend(self) -> str:
        return BACKEND_NAME

    def next_rendezvous(self) -> RendezvousInfo:
        self._store = None  # the previous round's: its server stops once nothing refers to it
        if self.rank == 0:
            self._store = self._serve()
        else:  # a new connection each round: node 0 serves a new store on the same port
            self._store = TCPStore(self.master_addr, self.master_port, self.world_size, False, self.timeout)
        return super().next_rendezvous()

    def _serve(self) -> TCPStore:
        """A new store server on this rendezvous's port (a free one at first if none was asked for)."""
        listener = self._listen(self.master_port)
        self.master_port = listener.getsockname()[1]
        return TCPStore(  # type: ignore[call-arg]
            self.master_addr,
            self.master_port,
            self.world_size,
            True,
            self.timeout,
            master_listen_fd=listener.detach(),  # the store closes it when it stops
        )

    def _listen(self, port: int) -> socket.socket:
        try:
            if not self._listen_all:
                return socket.create_server((self.master_addr, port), backlog=512)
            if socket.has_dualstack_ipv6():
                return socket.create_server(("::", port), family=socket.AF_INET6, backlog=512, dualstack_ipv6=True)
            return socket.create_server(("", port), backlog=512)
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            if not self._port_fixed and port != 0:  # ours, taken since the last round: any free port will do
                return self._listen(0)
            # Taken since the preflight looked (or it was skipped).
            where = "this host" if self._listen_all else self.master_addr
            raise PreflightError(f"port: master port {port} is already in use on {where}", FIX_PORT) from None

    def shutdown(self) -> bool:
        store, self._store = self._store, None
        if store is None or self.world_size == 1:
            return True
        try:
            if self.rank == 0:
                store.wait([DOOR_KEY], datetime.timedelta(seconds=LEAVE_WAIT))
            elif store.add(LEFT_KEY, 1) == self.world_size - 1:
                store.set(DOOR_KEY, "1")
        except (RuntimeError, OSError):  # node 0 or its store already gone; or not every node left in time
            pass
        return True


def _create(params: RendezvousParameters) -> RendezvousHandler:
    master_addr, master_port = parse_rendezvous_endpoint(params.endpoint, default_port=0)
    timeout = int(params.config.get("timeout", 600))
    rank = int(params.config.get("rank", 0))
    listen_all = params.get_as_bool(LISTEN_ALL, False) is True
    return BoundStaticRendezvous(master_addr, master_port, rank, params.max_nodes, params.run_id, timeout, listen_all)


def join_timeout(plan: RendezvousPlan) -> tuple[int, str]:
    """How long a node waits for the rendezvous, and the setting that says so."""
    for key in ("join_timeout", "timeout") if plan.backend == "static" else ("join_timeout",):
        if key in plan.conf:
            return int(plan.conf[key]), f"--rdzv-conf {key}={plan.conf[key]}"
    return DEFAULT_TIMEOUT, "the default; --rdzv-conf join_timeout=SECONDS sets it"


def guarded(plan: RendezvousPlan, step: Callable[[], T], connecting: bool = False) -> T:
    """A step of the rendezvous (``connecting`` to its store, or a round), interrupted by a stop signal at once,
    and its failure, or no answer within the join timeout, as one ``RendezvousFailed`` line."""
    timeout, source = join_timeout(plan)
    where = f"{_endpoint(plan)} (run id {plan.run_id!r}, {plan.min_nodes}-{plan.max_nodes} node(s))" \
        if plan.min_nodes != plan.max_nodes else f"{_endpoint(plan)} (run id {plan.run_id!r}, {plan.max_nodes} nodes)"
    hint = "check the endpoint, that it is reachable from here, and that every node was started with the same run id"
    try:
        return call_interruptibly(step, timeout, "rendezvous")
    except TimeoutError:
        what = "no rendezvous store answered" if connecting else "the nodes did not meet"
        raise RendezvousFailed(f"rendezvous: {what} at {where} within {timeout} s ({source})", hint) from None
    except RendezvousGracefulExitError:
        raise
    except (DistError, RendezvousError) as error:
        cause = _first_line(error)
        raise RendezvousFailed(f"rendezvous at {where} failed within {timeout} s ({source}): {cause}", hint) from None


def _first_line(error: BaseException) -> str:
    """The error's first line, or its cause's where elastic wraps it ("See inner exception for details")."""
    text = str(error).strip().splitlines()
    if error.__cause__ is not None and (not text or "inner exception" in text[0]):
        return _first_line(error.__cause__)
    return text[0] if text else type(error).__name__


def handler_for(plan: RendezvousPlan, local_addr: str | None) -> RendezvousHandler:
    """The rendezvous handler for a plan: ours for ``static``, elastic's for the rest."""
    from torch.distributed.elastic.rendezvous.registry import get_rendezvous_handler

    rendezvous_handler_registry.register(BACKEND_NAME, _create)
    params = RendezvousParameters(
        backend=BACKEND_NAME if plan.backend == "static" else plan.backend,
        endpoint=_endpoint(plan),
        run_id=plan.run_id,
        min_nodes=plan.min_nodes,
        max_nodes=plan.max_nodes,
        local_addr=local_addr,
        **dict(plan.conf),
        **({LISTEN_ALL: "true"} if plan.backend == "static" and plan.listen_all else {}),
    )
    return get_rendezvous_handler(params)


def _endpoint(plan: RendezvousPlan) -> str:
    """``host:port`` as elastic parses it (IPv6 hosts in brackets); static without a port: port 0, a free one."""
    host = f"[{plan.host}]" if ":" in plan.host else plan.host
    if plan.port is None:
        return f"{host}:0" if plan.backend == "static" else host
    return f"{host}:{plan.port}"
