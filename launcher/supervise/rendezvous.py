"""torchrun's static rendezvous, with the store bound to the master address only.

Elastic's ``StaticTCPRendezvous`` creates a ``TCPStore`` that listens on every
interface whatever the host. Here node 0 binds a socket to ``master_addr``
first (port 0 means a free port, so parallel runs never clash) and hands it to
the store as ``master_listen_fd``. Registered in elastic's handler registry as
``launcher-static`` (registering the same creator again is a no-op); everything
else (use_agent_store, run ids, restarts) is elastic's own. Imports torch:
launch side, used by the agent only.
"""

from __future__ import annotations

import errno
import socket

from torch.distributed import TCPStore  # type: ignore[attr-defined]
from torch.distributed.elastic.rendezvous import (
    RendezvousHandler,
    RendezvousInfo,
    RendezvousParameters,
    rendezvous_handler_registry,
)
from torch.distributed.elastic.rendezvous.static_tcp_rendezvous import StaticTCPRendezvous
from torch.distributed.elastic.rendezvous.utils import parse_rendezvous_endpoint

from launcher.errors import PreflightError
from launcher.hints import FIX_PORT
from launcher.plan.model import RendezvousPlan

BACKEND_NAME = "launcher-static"


class BoundStaticRendezvous(StaticTCPRendezvous):
    """Static rendezvous whose store listens on ``master_addr`` only."""

    _listener: socket.socket | None = None

    def get_backend(self) -> str:
        return BACKEND_NAME

    def next_rendezvous(self) -> RendezvousInfo:
        if self._store is None and self.rank == 0:
            try:
                listener = socket.create_server((self.master_addr, self.master_port), backlog=512)
            except OSError as error:
                if error.errno != errno.EADDRINUSE:
                    raise
                # Taken since the preflight looked (or it was skipped): nothing has started yet.
                raise PreflightError(f"port: master port {self.master_port} is already in use on "
                                     f"{self.master_addr}", FIX_PORT) from None
            self.master_port = listener.getsockname()[1]
            self._listener = listener  # kept open for the store's lifetime
            self._store = TCPStore(  # type: ignore[call-arg]
                self.master_addr,
                self.master_port,
                self.world_size,
                True,
                self.timeout,
                multi_tenant=True,
                master_listen_fd=listener.fileno(),
            )
        return super().next_rendezvous()

    def shutdown(self) -> bool:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        return True


def _create(params: RendezvousParameters) -> RendezvousHandler:
    master_addr, master_port = parse_rendezvous_endpoint(params.endpoint, default_port=0)
    timeout = int(params.config.get("timeout", 600))
    rank = int(params.config.get("rank", 0))
    return BoundStaticRendezvous(master_addr, master_port, rank, params.max_nodes, params.run_id, timeout)


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
    )
    return get_rendezvous_handler(params)


def _endpoint(plan: RendezvousPlan) -> str:
    """``host:port`` as elastic parses it (IPv6 hosts in brackets); static without a port: port 0, a free one."""
    host = f"[{plan.host}]" if ":" in plan.host else plan.host
    if plan.port is None:
        return f"{host}:0" if plan.backend == "static" else host
    return f"{host}:{plan.port}"
