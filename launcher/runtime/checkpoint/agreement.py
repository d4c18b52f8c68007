"""How the ranks of a job agree about checkpoints: rank 0 decides, the others receive; a save counts once all wrote.

- Whether to save now, when only rank 0 can tell (a time-based save, a
  save-and-stop request), and which checkpoint to resume from: rank 0 decides
  and broadcasts its decision on a gloo group of the checkpointer's own (NCCL
  jobs and the user's collectives are left alone). Every rank makes these calls
  at the same points of the training loop, like any collective.
- Save and stop: rank 0 looks for the launcher's request in the job's store
  (``protocol.SAVE_AND_STOP_KEY``) and names the step, as above.
- When a save is complete: each rank's writer adds one to a counter in the
  job's c10d store (a connection of the checkpointer's own to
  ``MASTER_ADDR:MASTER_PORT``, the store of the launcher's agent or of
  torchrun's) once its parts are durable; rank 0's writer waits until every
  rank counted, then marks the checkpoint complete. No rank waits for another
  at close or at exit, so a rank that fails exits at once.

The counters live under a prefix drawn by rank 0 when the checkpointer is made,
so a restarted attempt that shares the store never counts an earlier one's.
A world of one needs none of this. Worker side: never imports the launch side.
"""

from __future__ import annotations

import datetime
import os
import secrets
import time

import torch
import torch.distributed as dist
from torch.distributed import PrefixStore, Store, TCPStore  # type: ignore[attr-defined]

from launcher.errors import ConfigError
from launcher.protocol import SAVE_AND_STOP_KEY, STOPPED_KEY

STORE_POLL = 0.01  # seconds between rank 0's looks at the count of ranks that wrote their parts
REQUEST_POLL = 0.1  # seconds between rank 0's looks for the launcher's save-and-stop request


class Agreement:
    """The checkpointer's collectives and store keys; a no-op in a world of one."""

    def __init__(self, rank: int, world_size: int) -> None:
        self.rank = rank
        self.world_size = world_size
        self._group: dist.ProcessGroup | None = None
        self._store: Store | None = None
        self.job_store: Store | None = None  # the store itself, without the prefix: launcher keys live there
        if world_size > 1:
            self._group = dist.new_group(backend="gloo")
            self.job_store = job_store()
            (nonce,) = self.from_rank0([secrets.randbits(62)])  # the OS's randomness: no generator of the job moves
            self._store = PrefixStore(f"launcher/checkpoint/{nonce}/", self.job_store)

    def from_rank0(self, values: list[int]) -> list[int]:
        """Rank 0's ``values``, on every rank."""
        if self._group is None:
            return values
        tensor = torch.tensor(values, dtype=torch.int64)
        dist.broadcast(tensor, src=0, group=self._group)
        return [int(value) for value in tensor.tolist()]

    def part_written(self, save: int) -> None:
        """This rank's parts of save number ``save`` are durable (the writer's thread)."""
        if self._store is not None:
            self._store.add(f"{save}/written", 1)

    def wait_until_all_written(self, save: int) -> None:
        """Rank 0's writer: until every rank's parts of save number ``save`` are durable."""
        if self._store is None:
            return
        while self._store.add(f"{save}/written", 0) < self.world_size:
            time.sleep(STORE_POLL)


class StopRequests:
    """Rank 0's view of the launcher's save-and-stop request (``protocol.SAVE_AND_STOP_KEY`` in the job's store)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._next_look = 0.0

    def asked(self) -> bool:
        """Whether the launcher asked (looked up at most every ``REQUEST_POLL`` seconds)."""
        now = time.monotonic()
        if now < self._next_look:
            return False
        self._next_look = now + REQUEST_POLL
        return bool(self._store.check([SAVE_AND_STOP_KEY]))

    def stopped(self, step: int) -> None:
        """Tell the launcher that every rank saved ``step`` and stops."""
        self._store.set(STOPPED_KEY, str(step))


def job_store() -> Store:
    """A connection of our own to the job's c10d store, at ``MASTER_ADDR:MASTER_PORT`` (the env:// rendezvous)."""
    host, port = os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT")
    if not host or not port or not port.isdigit():
        raise ConfigError("checkpoints of more than one rank need the job's store at MASTER_ADDR:MASTER_PORT",
                          "start the job with the launcher or torchrun (the env:// rendezvous)")
    return TCPStore(host, int(port), is_master=False, timeout=datetime.timedelta(seconds=300),
                         wait_for_workers=False)
