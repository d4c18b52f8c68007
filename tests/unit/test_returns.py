"""``launcher.returns``: every rank's value on one pipe, read by the agent without ever blocking on it.

Workers are real processes: forked (they share the agent's objects) and spawned (the slots are
pickled to them: one fd, the write end, whatever the number of slots).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import pickle
import sys
import time
from collections.abc import Iterator

import pytest

from launcher import returns

pytestmark = [pytest.mark.timeout(60), pytest.mark.skipif(not returns.supported(), reason="POSIX fds")]


@pytest.fixture
def channel() -> Iterator[returns.ReturnChannel]:
    made = returns.ReturnChannel(multiprocessing.get_context("fork"))
    yield made
    made.close()


def _put(slots: dict[int, returns.ReturnSlot], local_rank: int, value: object) -> None:
    slots[local_rank].put(value)


def _fds_then_put(slots: dict[int, returns.ReturnSlot], local_rank: int) -> None:
    slots[local_rank].put(sorted(int(fd) for fd in os.listdir("/proc/self/fd")))


def _collect(slots: dict[int, returns.ReturnSlot], reader: int, limit: float = 30) -> dict[int, object]:
    """What the agent does: wait on the reader, take each value once it is in."""
    values: dict[int, object] = {}
    deadline = time.monotonic() + limit
    while len(values) < len(slots) and time.monotonic() < deadline:
        multiprocessing.connection.wait([reader], timeout=1)
        values.update({rank: slot.get() for rank, slot in slots.items() if rank not in values and not slot.empty()})
    return values


def test_values_of_forked_workers_come_back_by_rank(channel: returns.ReturnChannel) -> None:
    slots = channel.slots(6)
    big = b"x" * (1 << 20)  # more than a pipe holds: the worker blocks until the agent reads
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_put, args=(slots, rank, (rank, big if rank == 3 else None)))
               for rank in range(6)]
    for worker in workers:
        worker.start()
    values = _collect(slots, channel.reader)
    for worker in workers:
        worker.join(30)
    assert values == {rank: (rank, big if rank == 3 else None) for rank in range(6)}
    assert [worker.exitcode for worker in workers] == [0] * 6


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts fds in /proc")
def test_a_spawned_worker_gets_one_fd_whatever_the_number_of_slots() -> None:
    context = multiprocessing.get_context("spawn")
    held = {}
    for nprocs in (2, 200):
        channel = returns.ReturnChannel(context)
        try:
            slots = channel.slots(nprocs)
            worker = context.Process(target=_fds_then_put, args=(slots, nprocs - 1))
            worker.start()
            held[nprocs] = _collect({nprocs - 1: slots[nprocs - 1]}, channel.reader)[nprocs - 1]
            worker.join(30)
            assert worker.exitcode == 0
        finally:
            channel.close()
    assert held[2] == held[200]


def test_a_torn_frame_never_blocks_the_agent(channel: returns.ReturnChannel) -> None:
    """A worker killed in the middle of a large value leaves part of a frame: the agent reads on, never waits."""
    slots = channel.slots(2)
    slots[0].put("whole")
    frame = pickle.dumps("a value cut short")
    os.write(channel._writer.fileno(), returns._HEADER.pack(1, len(frame)) + frame[:5])
    started = time.monotonic()
    assert not slots[0].empty() and slots[1].empty()
    assert slots[0].get() == "whole"
    assert time.monotonic() - started < 1
    with pytest.raises(KeyError):
        slots[1].get()


def test_only_the_write_end_travels(channel: returns.ReturnChannel) -> None:
    state = channel.__getstate__()
    assert set(state) == {"_writer", "_lock"}
    copy = returns.ReturnChannel.__new__(returns.ReturnChannel)
    copy.__setstate__(state)
    with pytest.raises(ValueError, match="cannot read"):
        _ = copy.reader


def test_a_process_forked_from_the_agent_holds_no_read_end(channel: returns.ReturnChannel) -> None:
    reader = channel.reader
    pid = os.fork()
    if pid == 0:  # the child: its copy of the channel closed the read end when it was forked
        try:
            os.fstat(reader)
            os._exit(1 if channel._read_fd is None else 2)
        except OSError:
            os._exit(0 if channel._read_fd is None else 3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    os.fstat(channel.reader)  # still open here
