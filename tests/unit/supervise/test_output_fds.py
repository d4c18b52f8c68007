"""The output router's fds: how many it holds per rank, and none of them in a process forked from it.

Routing itself (prefixes, files, last lines) runs end to end in tests/multiproc/test_output.py.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from launcher.plan.model import OutputPlan
from launcher.supervise.output import OutputRouter
from tests.unit.compat.mp_checks import fd_identity

pytestmark = [pytest.mark.timeout(30),
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="FIFOs read and written in one fd")]


def _open_fds() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/fd")}



def _router() -> OutputRouter:
    return OutputRouter(OutputPlan(console_ranks=frozenset(), hidden=frozenset(), write_files=True, nprocs=3,
                                     prefix_template=None, role="default"))


@pytest.fixture
def router() -> Iterator[OutputRouter]:
    made = _router()
    yield made
    made.close()


def _attach(router: OutputRouter, root: Path, nprocs: int) -> set[int]:
    """Attach ``nprocs`` ranks; the fds that took."""
    before = _open_fds()
    for local_rank in range(nprocs):
        (root / str(local_rank)).mkdir()
        router.attach(local_rank, local_rank, str(root / str(local_rank)))
    return _open_fds() - before


def test_each_rank_costs_one_fd_per_fifo_and_per_log_file(router: OutputRouter, tmp_path: Path) -> None:
    first = _attach(router, tmp_path, 1)  # the first attach also starts the loop (its selector's fd exists already)
    assert len(first) == 4  # stdout.pipe, stderr.pipe, stdout.log, stderr.log
    more = _open_fds()
    for local_rank in (1, 2):
        (tmp_path / str(local_rank)).mkdir()
        router.attach(local_rank, local_rank, str(tmp_path / str(local_rank)))
    assert len(_open_fds() - more) == 8
    (tmp_path / "attempt_1").mkdir()
    router.attach(0, 0, str(tmp_path / "attempt_1"))  # a new attempt replaces the rank's fds, adds none
    assert len(_open_fds() - more) == 8


def test_a_process_forked_from_the_router_holds_none_of_its_fds(tmp_path: Path) -> None:
    router = _router()
    (tmp_path / "0").mkdir()
    router.attach(0, 0, str(tmp_path / "0"))
    held = {fd: fd_identity(fd) for fd in _open_fds() if fd_identity(fd) is not None}
    pid = os.fork()
    if pid == 0:
        kept = sum(1 for fd, identity in held.items() if fd > 2 and fd_identity(fd) == identity
                   and os.readlink(f"/proc/self/fd/{fd}").startswith(str(tmp_path)))
        os._exit(min(kept, 100))
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with open(tmp_path / "0" / "stdout.pipe", "wb") as pipe:  # this process's router still reads
        pipe.write(b"still routed\n")
    router.close()  # drains what is left
    assert (tmp_path / "0" / "stdout.log").read_bytes() == b"still routed\n"
