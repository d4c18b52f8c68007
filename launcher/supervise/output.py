"""Worker output, routed through the launcher: one prefix per line, never interleaved mid-line.

Each rank writes its stdout and stderr (file descriptors 1 and 2, so C
libraries and DataLoader workers too) into two FIFOs next to its error file;
the bootstrap connects them. One background loop reads every FIFO and, per
rank and stream: writes whole lines to the console with a ``[rankN]:`` prefix
(unless the line already has it, as torch's own excepthook does) or the prefix
``TORCHELASTIC_LOG_LINE_PREFIX_TEMPLATE`` makes, appends the raw bytes to
``stdout.log``/``stderr.log`` when a log dir was asked for, remembers the last
lines for the failure summary, and when the rank last wrote (a progress source
of the hang watchdog). With a single rank on the console and no template, bytes
pass through as they come, so carriage-return progress bars (tqdm) work;
prefixed, a carriage-return line keeps its final state. The line logic
(``lines.py``) costs time linear in the bytes, however long a line or however
many progress updates: an open line keeps at most 64 KiB, a longer line comes
out in 64 KiB pieces, each prefixed.
A console whose reader went away (EPIPE: ``| head``) gets nothing more, and
``closed_console`` tells the agent, which stops the job.
With a progress display (``console_progress.py``), every console write goes through its ``above()``:
the bar makes room for worker text and comes back after it, under the display's lock.
Each FIFO is removed once its rank connected (by the worker), or with its stream (by the router).
FIFOs do not exist on Windows: there the workers write to the console directly.

Per rank the router holds one fd per FIFO (Linux opens a FIFO for reading and
writing at once, so that it never reports EOF between writers; elsewhere a
second, write-only fd does that) and, with a log dir, one per log file. A
process forked from the router's (a worker under the fork start method) closes
all of them at once: a worker holds its own two FIFOs only.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import os
import selectors
import sys
import threading
import time
import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol, TextIO

from launcher.plan.model import OutputPlan
from launcher.protocol import PIPE_NAMES
from launcher.runtime.threads import BackgroundLoop
from launcher.supervise.lines import LAST_LINES, StreamText

_READ_SIZE = 65536


@dataclass
class _Stream:
    local_rank: int
    rank: int
    name: str
    read_fd: int
    keep_fd: int | None  # our own write end where read_fd cannot write too: no EOF between writers
    console: TextIO | None
    log_fd: int | None  # stdout.log / stderr.log, appended to
    text: StreamText  # bytes → console text and finished lines
    lines: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=LAST_LINES))

    @property
    def pending(self) -> bytes:
        """The open (unfinished) line's text."""
        return self.text.pending


class ConsoleOverlay(Protocol):
    """What else draws on the console (the progress bar), told of every write of worker text."""

    def above(self, stream: object, ends_line: bool) -> AbstractContextManager[None]:
        """Around one write by ``stream``; ``ends_line``: the text ends with a newline."""
        ...


def fifos_supported() -> bool:
    return hasattr(os, "mkfifo")


def _open_fifo(path: str) -> tuple[int, int | None]:
    """The router's ends of a FIFO: (read fd, write fd that keeps EOF away, or None where the read fd does).

    Linux opens a FIFO for reading and writing in one fd (fifo(7)); POSIX leaves that undefined.
    """
    if sys.platform.startswith("linux"):
        return os.open(path, os.O_RDWR | os.O_NONBLOCK), None
    return os.open(path, os.O_RDONLY | os.O_NONBLOCK), os.open(path, os.O_WRONLY | os.O_NONBLOCK)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class OutputRouter:
    """Owns the read ends of every rank's FIFOs and one loop that drains them."""

    def __init__(self, policy: OutputPlan, overlay: ConsoleOverlay | None = None) -> None:
        self._policy = policy
        self._overlay = overlay
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._streams: dict[tuple[int, str], _Stream] = {}
        self._last_output: dict[int, float] = {}
        self._last_lines: dict[int, collections.deque[str]] = {}
        self._loop = BackgroundLoop("launcher-output", self._pump, interval=0)
        self._started = False
        self._wake_read, self._wake_write = os.pipe()  # close() wakes the loop out of its select
        self._selector.register(self._wake_read, selectors.EVENT_READ, None)
        self._fifos: dict[tuple[int, str], str] = {}  # the path of each stream's FIFO, removed with the stream
        self.closed_console: str | None = None  # "stdout"/"stderr": the first console whose reader went away
        self._closed_read, self._closed_write = os.pipe()  # readable from then on: see ``closed_console_fd``
        _routers.add(self)

    # -- attempts ------------------------------------------------------------

    def attach(self, local_rank: int, rank: int, rank_dir: str) -> None:
        """Create the FIFOs of one rank for a new attempt (replacing the previous attempt's)."""
        with self._lock:
            for name, filename in PIPE_NAMES.items():
                self._close_stream((local_rank, name))
                path = os.path.join(rank_dir, filename)
                os.mkfifo(path, 0o600)
                self._fifos[(local_rank, name)] = path  # the worker removes it once connected; else _close_stream
                read_fd, keep_fd = _open_fifo(path)
                shown = (self._policy.console_ranks is None or local_rank in self._policy.console_ranks) and (
                    (local_rank, name) not in self._policy.hidden
                )
                console = (sys.stdout if name == "stdout" else sys.stderr) if shown else None
                log_fd = (os.open(os.path.join(rank_dir, f"{name}.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
                          if self._policy.write_files else None)
                stream = _Stream(local_rank, rank, name, read_fd, keep_fd, console, log_fd,
                                 StreamText(self._prefix(local_rank, rank)),
                                 lines=self._last_lines.setdefault(local_rank, collections.deque(maxlen=LAST_LINES)))
                self._streams[(local_rank, name)] = stream
                self._selector.register(read_fd, selectors.EVENT_READ, stream)
        if not self._started:
            self._started = True
            self._loop.start()

    # -- what the supervisor asks ------------------------------------------

    def last_lines(self, local_rank: int) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._last_lines.get(local_rank, ()))

    def last_output(self, local_rank: int) -> float | None:
        """Wall-clock time of the rank's latest output, or None if it wrote nothing yet."""
        return self._last_output.get(local_rank)

    def say(self, line: str) -> None:
        """A line of the launcher's own on stderr, written as worker text is (above the progress bar)."""
        with self._overlay.above(None, True) if self._overlay is not None else contextlib.nullcontext():
            print(line, file=sys.stderr, flush=True)

    def closed_console_fd(self) -> int:
        """A file descriptor that turns readable when ``closed_console`` is set: the agent waits on it too."""
        return self._closed_read

    def close(self) -> None:
        """Drain what is left, close and remove every FIFO, close every file, stop the loop."""
        self._loop.request_stop()
        os.write(self._wake_write, b"x")
        self._loop.stop()
        with self._lock:
            for key in list(self._streams):
                self._close_stream(key)
        self._selector.close()
        for fd in (self._wake_read, self._wake_write, self._closed_read, self._closed_write):
            os.close(fd)
        _routers.discard(self)

    def _drop_in_child(self) -> None:
        """In a process forked from this one: close every fd, touch no lock (the loop's thread is not here)."""
        for stream in self._streams.values():
            for fd in (stream.read_fd, stream.keep_fd, stream.log_fd):
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)
        self._streams.clear()
        with contextlib.suppress(OSError):
            self._selector.close()
        for fd in (self._wake_read, self._wake_write, self._closed_read, self._closed_write):
            with contextlib.suppress(OSError):
                os.close(fd)

    # -- the loop ------------------------------------------------------------

    def _pump(self) -> None:
        ready = self._selector.select(timeout=1.0)
        with self._lock:  # attach() may have replaced a stream meanwhile
            for key, _ in ready:
                stream: _Stream | None = key.data
                if stream is not None and self._streams.get((stream.local_rank, stream.name)) is stream:
                    self._read(stream)

    def _read(self, stream: _Stream) -> None:
        while True:
            try:
                data = os.read(stream.read_fd, _READ_SIZE)
            except BlockingIOError:
                return
            except OSError as error:
                if error.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    return
                raise
            if not data:
                return
            self._last_output[stream.local_rank] = time.time()
            if stream.log_fd is not None:
                _write_all(stream.log_fd, data)
            self._emit(stream, data)

    def _emit(self, stream: _Stream, data: bytes) -> None:
        text, finished = stream.text.feed(data)
        stream.lines.extend(finished)
        if text:
            self._write(stream, text)

    def _write(self, stream: _Stream, text: str) -> None:
        if stream.console is None:
            return
        try:
            if self._overlay is None:
                stream.console.write(text)
                stream.console.flush()
            else:
                with self._overlay.above((stream.local_rank, stream.name), text.endswith("\n")):
                    stream.console.write(text)
                    stream.console.flush()
        except BrokenPipeError:  # its reader went away (``| head``): the agent stops the job
            self._console_closed(stream)
        except (OSError, ValueError):  # the console is unusable otherwise: keep files and last lines
            stream.console = None

    def _console_closed(self, stream: _Stream) -> None:
        """Nothing more to that console, from any rank; the files and last lines go on until the job is stopped.

        The console's file descriptor goes to /dev/null in this process: what its buffer still holds, and
        anything printed to it later (the interpreter flushes it at exit), must not raise again.
        """
        console = stream.console
        assert console is not None  # it was written to
        for each in (stream, *self._streams.values()):
            if each.console is console:
                each.console = None
        with contextlib.suppress(OSError, ValueError):  # ValueError, io.UnsupportedOperation: no fd of its own
            fd = console.fileno()
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)
        if self.closed_console is None:
            self.closed_console = stream.name
            os.write(self._closed_write, b"x")

    def _prefix(self, local_rank: int, rank: int) -> Callable[[str], str] | None:
        """A console line of this rank, newline included; None where the console gets the bytes as they come."""
        if not self._policy.prefixed:
            return None
        head = self._policy.template_prefix(local_rank, rank)
        if head is not None:  # as torchrun: the template's text, then the line
            return lambda text: f"{head}{text}\n"
        tag = f"[rank{rank}]:"
        return lambda text: f"{text}\n" if text.startswith(tag) else f"{tag} {text}\n" if text else f"{tag}\n"

    def _close_stream(self, key: tuple[int, str]) -> None:
        fifo = self._fifos.pop(key, None)
        if fifo is not None:  # left by a rank that never connected (one that did removed it: FileNotFoundError)
            with contextlib.suppress(OSError):
                os.unlink(fifo)
        stream = self._streams.pop(key, None)
        if stream is None:
            return
        self._read(stream)
        if stream.pending:
            self._emit(stream, b"\n")
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(stream.read_fd)
        for fd in (stream.read_fd, stream.keep_fd, stream.log_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)


_routers: weakref.WeakSet[OutputRouter] = weakref.WeakSet()


def _drop_routers_in_child() -> None:
    for router in list(_routers):
        router._drop_in_child()
    _routers.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_routers_in_child)
