"""The static rendezvous's store socket: on the master address only, or on every interface where other hosts
connect (one SLURM task per rank on several nodes)."""

from __future__ import annotations

import pytest

from launcher.plan.model import RendezvousPlan
from launcher.supervise.rendezvous import BoundStaticRendezvous, handler_for

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(("listen_all", "bound"), [(False, {"127.0.0.1"}), (True, {"::", "0.0.0.0"})])
def test_the_store_socket_binds_as_planned(listen_all: bool, bound: set[str]) -> None:
    plan = RendezvousPlan("static", "127.0.0.1", None, "127.0.0.1", "run", 2, 2, 0, {"rank": "0"}, listen_all)
    handler = handler_for(plan, None)
    assert isinstance(handler, BoundStaticRendezvous)
    with handler._listen(0) as listener:
        assert listener.getsockname()[0] in bound
