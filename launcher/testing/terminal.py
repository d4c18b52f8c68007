"""A command under a pseudo-terminal, and the screen its output leaves: for tests of what a terminal shows.

``run_in_terminal`` gives the command a terminal (a pty of a known size) on stdin, stdout and stderr and
collects everything written to it; ``screen_lines`` replays that output as a terminal draws it (a carriage
return goes back to the start of the line, text overwrites). POSIX only. Never imports torch.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TerminalRun:
    returncode: int
    output: str  # everything written to the terminal, as written (the pty turns "\n" into "\r\n")


def screen_lines(output: str) -> list[str]:
    """The lines a terminal shows after ``output``: each line's text after every carriage return overwrote it."""
    lines: list[list[str]] = [[]]
    column = 0
    for char in output:
        if char == "\n":
            lines.append([])
            column = 0
        elif char == "\r":
            column = 0
        else:
            line = lines[-1]
            if column < len(line):
                line[column] = char
            else:
                line.append(char)
            column += 1
    return ["".join(line).rstrip() for line in lines]


def run_in_terminal(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout: float,
                    columns: int = 160, rows: int = 40) -> TerminalRun:
    """Run ``argv`` to the end with a terminal of ``columns`` x ``rows`` as its stdin, stdout and stderr."""
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    chunks: list[bytes] = []
    done = threading.Event()
    reader = threading.Thread(target=_read_until_closed, args=(leader, chunks, done), daemon=True)
    reader.start()
    try:
        try:
            process = subprocess.Popen(list(argv), cwd=cwd, env=dict(env), stdin=follower, stdout=follower,
                                       stderr=follower)
        finally:
            os.close(follower)  # the command's now: the terminal closes (EIO) when its last process is gone
        try:
            returncode = process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
    finally:
        deadline = time.monotonic() + 10  # what the command's last processes still write
        while reader.is_alive() and time.monotonic() < deadline:
            reader.join(0.1)
        done.set()
        reader.join(5)
        os.close(leader)
    return TerminalRun(returncode, b"".join(chunks).decode("utf-8", "replace"))


def _read_until_closed(leader: int, chunks: list[bytes], done: threading.Event) -> None:
    """Read the terminal until every process closed it (EIO), or until ``done``."""
    while not done.is_set():
        ready, _, _ = select.select([leader], [], [], 0.1)
        if not ready:
            continue
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: no process holds the terminal any more
            return
        if not data:
            return
        chunks.append(data)
    with contextlib.suppress(OSError):  # what is left in the buffer
        while select.select([leader], [], [], 0)[0]:
            data = os.read(leader, 65536)
            if not data:
                return
            chunks.append(data)
