"""What crosses between the pytest process, the rank server and the ranks of a ``distributed`` test.

The pytest process sends a ``RunRequest`` (or a ``GpuQuery``) to the server over
its stdin; the server answers with a ``RunReply`` (or the GPU count) on its
stdout; each frame is a pickle after its length (``send``/``receive``). Every
rank writes its ``RankOutcome`` to ``OUTCOME_FILE`` in its own folder, next to
its captured output (``STDOUT_FILE``, ``STDERR_FILE``) and the stacks the server
asked for when it stopped the rank (``STACKS_FILE`` of ``launcher.protocol``).

Standard library only: imported by the pytest process, the server and the ranks.
"""

from __future__ import annotations

import os
import pickle
import struct
from dataclasses import dataclass
from typing import Any, Literal

OUTCOME_FILE = "outcome.pickle"
STDOUT_FILE = "stdout.txt"
STDERR_FILE = "stderr.txt"
_LENGTH = struct.Struct("!Q")

Outcome = Literal["passed", "failed", "skipped", "xfailed"]


class RankContext:
    """What the ``ctx`` fixture gives in the pytest process: each rank puts its own ``Context`` in its place."""

    def __repr__(self) -> str:
        return "<the rank's launcher Context (only inside a @pytest.mark.distributed test)>"


@dataclass(frozen=True)
class RunRequest:
    """One test: where its module is, how pytest imported it, and what the ranks need to run it."""

    folder: str  # rank N works in folder/rankN, made by the server
    nprocs: int
    backend: str  # "gloo", "nccl" or "auto"
    timeout: float
    module_path: str
    module_name: str
    class_name: str | None  # a test method's class, instantiated in each rank
    function: str
    arguments: bytes  # the pickled fixture values and parameters, by name
    environ: dict[str, str]
    cwd: str
    sys_path: list[str]
    import_mode: str
    rootpath: str
    consider_namespace_packages: bool
    rewrite: frozenset[str] | None  # modules whose asserts pytest rewrote; None: --assert=plain
    verbosity: int  # for assertion explanations
    diff_style: str
    tbstyle: str
    showlocals: bool
    fulltrace: bool


@dataclass(frozen=True)
class GpuQuery:
    """How many CUDA devices a rank would see (counted in a child of the server, never in the server)."""


@dataclass(frozen=True)
class RankExit:
    """How a rank's process ended, as the server saw it."""

    rank: int
    exitcode: int | None  # None when a signal ended it
    signal: int | None
    stopped: bool  # the server killed it: at the timeout, or after a peer failed
    ended_at: float  # time.time() when the server saw it end


@dataclass(frozen=True)
class RunReply:
    exits: tuple[RankExit, ...]
    timed_out: bool
    seconds: float  # from the first fork to the last rank gone


@dataclass(frozen=True)
class RankOutcome:
    """What a rank reports about its run of the test body."""

    outcome: Outcome
    message: str = ""  # one line: "AssertionError: assert 1 == 2", a skip's reason
    report: str = ""  # a failure as pytest shows it: source lines, the rewritten assertion, the traceback
    raised_at: float = 0.0  # time.time() of the failure
    in_collective: bool = False  # raised inside torch.distributed: probably a peer's failure seen here
    value: bytes | None = None  # the pickled return value (with check=)


def send(fd: int, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    _write_all(fd, _LENGTH.pack(len(data)) + data)


def receive(fd: int) -> Any:
    """The next message, or None at EOF (the other side closed its end or died)."""
    header = _read_exactly(fd, _LENGTH.size)
    if header is None:
        return None
    data = _read_exactly(fd, _LENGTH.unpack(header)[0])
    return None if data is None else pickle.loads(data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)
