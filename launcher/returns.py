"""One pipe that carries every rank's return value to the agent, whatever the number of ranks.

Elastic gives each rank a ``SimpleQueue`` for its return value and sends every
worker the whole dict of them: 2 fds per rank in each worker, which the
forkserver cannot pass beyond about 125 ranks (SCM_RIGHTS carries at most 253).
Here every worker gets the write end of one shared pipe (1 fd) and writes one
frame, ``(local rank, size, pickled value)``, under a lock that keeps frames
whole; the agent holds the read end.

``ReturnSlot`` stands in for one rank's queue where elastic uses it: the worker
calls ``put(value)``; the agent asks ``empty()`` and then ``get()``. The agent
reads without blocking and keeps partial frames: a worker killed in the middle
of a large value never blocks it (that worker's exit is the failure the agent
reports; the lock it held keeps the others from writing after the torn frame).
Values are pickled as multiprocessing's queues pickle them (``ForkingPickler``:
a tensor's storage is shared, and elastic keeps the worker alive until the
agent has read every value).

POSIX only (``supported``): elsewhere elastic's own queues stay. Imported by
both sides (a worker unpickles the slots); standard library only.
"""

from __future__ import annotations

import contextlib
import os
import struct
import weakref
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.reduction import ForkingPickler
from typing import Any

_HEADER = struct.Struct("!IQ")  # local rank, size of the pickled value
_READ_SIZE = 1 << 16


def supported() -> bool:
    """Whether this OS has the fds the channel passes (not Windows, whose pipes are handles)."""
    return os.name == "posix"


class ReturnChannel:
    """Both ends of the pipe in the agent; only the write end and the lock travel to a worker."""

    def __init__(self, context: BaseContext) -> None:
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        self._read_fd: int | None = read_fd
        self._writer = Connection(write_fd, readable=False)  # pickled with its fd under spawn and forkserver
        self._lock = context.Lock()
        self._pending = bytearray()
        self._values: dict[int, bytes] = {}
        _agent_channels.add(self)

    def __getstate__(self) -> dict[str, Any]:
        return {"_writer": self._writer, "_lock": self._lock}  # never the read end, nor what was read

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _read_fd=None, _pending=bytearray(), _values={})

    def slots(self, nprocs: int) -> dict[int, ReturnSlot]:
        """One slot per local rank, in place of elastic's queues."""
        return {local_rank: ReturnSlot(self, local_rank) for local_rank in range(nprocs)}

    @property
    def reader(self) -> int:
        """The fd that becomes readable when a value (or part of one) arrives: what the agent waits on."""
        if self._read_fd is None:
            raise ValueError("this end of the return channel cannot read")
        return self._read_fd

    # -- the worker ------------------------------------------------------------------------------------

    def put(self, local_rank: int, value: Any) -> None:
        data = bytes(ForkingPickler.dumps(value))
        frame = memoryview(_HEADER.pack(local_rank, len(data)) + data)
        with self._lock:
            fd = self._writer.fileno()
            while frame:
                frame = frame[os.write(fd, frame):]

    # -- the agent -------------------------------------------------------------------------------------

    def has(self, local_rank: int) -> bool:
        """Whether the rank's value is in (reading what arrived, without waiting)."""
        self._drain()
        return local_rank in self._values

    def take(self, local_rank: int) -> Any:
        """The rank's value; raises ``KeyError`` if it is not in."""
        self._drain()
        return ForkingPickler.loads(self._values.pop(local_rank))

    def _drain(self) -> None:
        fd = self.reader
        while True:
            try:
                chunk = os.read(fd, _READ_SIZE)
            except BlockingIOError:
                break
            if not chunk:
                break
            self._pending += chunk
        while len(self._pending) >= _HEADER.size:
            local_rank, size = _HEADER.unpack_from(self._pending)
            end = _HEADER.size + size
            if len(self._pending) < end:
                break  # the rest is on its way (or its writer died: then it never comes)
            self._values[local_rank] = bytes(self._pending[_HEADER.size:end])
            del self._pending[:end]

    def close(self) -> None:
        """Close the agent's ends (idempotent)."""
        self._close_reader()
        self._writer.close()

    def _close_reader(self) -> None:
        if self._read_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._read_fd)
            self._read_fd = None


class ReturnSlot:
    """One rank's place in the channel, shaped as the queue elastic expects (``put``, ``empty``, ``get``)."""

    def __init__(self, channel: ReturnChannel, local_rank: int) -> None:
        self.channel = channel
        self.local_rank = local_rank

    def put(self, value: Any) -> None:
        self.channel.put(self.local_rank, value)

    def empty(self) -> bool:
        return not self.channel.has(self.local_rank)

    def get(self) -> Any:
        return self.channel.take(self.local_rank)


_agent_channels: weakref.WeakSet[ReturnChannel] = weakref.WeakSet()


def _drop_read_ends_in_child() -> None:
    """A process forked from the agent (a worker under fork) writes to the channel; it never holds a read end."""
    for channel in list(_agent_channels):
        channel._close_reader()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_read_ends_in_child)
