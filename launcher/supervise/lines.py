"""One output stream's bytes as console text and finished lines, in time linear in the bytes.

The line logic of the output router (``output.py``), without FIFOs or threads. A line's text is its
final carriage-return state: what follows its last ``\\r`` that is followed by text (so ``\\r\\n``
keeps the text before it). While a line is open only that state is kept, at most ``PENDING_LIMIT``
(64 KiB) of it: a longer line comes out in pieces of that size (cut between UTF-8 characters), each
a line of its own. Each byte is looked at a bounded number of times. Unprefixed, the console gets
the bytes as they come (decoded, so progress bars keep working); prefixed, it gets each finished
line through the prefix. The last finished lines also come back for the failure summary, cut at
``REMEMBERED_CHARS`` characters.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable

# Bytes of an open line kept; past it, the line comes out in pieces. Also the largest string a piece makes:
# above glibc's mmap threshold (128 KiB) every piece would fault in fresh pages (1 MiB pieces: 2.6x the CPU).
PENDING_LIMIT = 1 << 16
LAST_LINES = 40  # finished lines the failure summary keeps per rank
REMEMBERED_CHARS = 2000  # characters of a finished line kept for the failure summary
CUT_MARK = " [...]"


class StreamText:
    """Turns one stream's bytes into console text and finished lines.

    ``prefix``: a finished line as the console shows it, newline included (one f-string copies a piece
    once), or None for a console that gets the bytes as they come.
    """

    def __init__(self, prefix: Callable[[str], str] | None, limit: int = PENDING_LIMIT) -> None:
        if limit < 4:
            raise ValueError("limit must leave room for a UTF-8 character (4 bytes)")
        self._prefix = prefix
        self._limit = limit
        self._parts: list[bytes] = []  # the open line's text since its last carriage return, as it came
        self._size = 0  # bytes in ``_parts``, at most ``limit``
        self._after_cr = False  # a ``\r`` followed the pending text: new text replaces it
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    @property
    def pending(self) -> bytes:
        """The open line's current text (empty when no line is open)."""
        return b"".join(self._parts)

    def feed(self, data: bytes) -> tuple[str, list[str]]:
        """The console text for ``data``, and the last ``LAST_LINES`` lines it finished, as the summary keeps them."""
        finished: list[bytes] = []
        if b"\n" not in data:  # memchr: much faster than a split that finds nothing
            self._add(data, finished)
        else:
            head, *whole, tail = data.split(b"\n")
            self._add(head, finished)
            finished.append(self._close_line())
            if b"\r" not in data and len(data) <= self._limit:  # plain short lines, the common case: as they are
                finished += whole
            else:
                for line in whole:
                    self._add(line, finished)
                    finished.append(self._close_line())
            self._add(tail, finished)
        if self._prefix is None:
            console = self._decoder.decode(data)
        else:
            prefix = self._prefix
            console = "".join([prefix(line.decode("utf-8", "replace")) for line in finished])
        return console, [remembered(line) for line in finished[-LAST_LINES:]]

    def _close_line(self) -> bytes:
        """The open line, finished by a newline."""
        line = b"".join(self._parts)
        self._parts, self._size, self._after_cr = [], 0, False
        return line

    def _add(self, segment: bytes, finished: list[bytes]) -> None:
        """Add ``segment`` (no newline in it) to the open line."""
        text = segment.rstrip(b"\r")  # a trailing \r replaces nothing until text follows it
        first = text.find(b"\r")
        if first != 0 and text:  # text before any \r continues the open line (or replaces it after a \r)
            self._extend(text[:first] if first > 0 else text, finished, replace=self._after_cr)
        if first >= 0:
            last = text.rfind(b"\r")
            if last - first > self._limit:  # a state between the two may pass the limit: its pieces come out
                self._long_states(text, first, last, finished)
            self._extend(text[last + 1:], finished, replace=True)
        if text:
            self._after_cr = False
        if len(text) < len(segment):
            self._after_cr = True

    def _long_states(self, text: bytes, first: int, last: int, finished: list[bytes]) -> None:
        """The pieces of every state between the carriage returns at ``first`` and ``last`` past the limit."""
        at = first
        while at < last:
            following = text.find(b"\r", at + 1, last + 1)
            if following - at - 1 > self._limit:
                self._extend(text[at + 1:following], finished, replace=True)
            at = following

    def _extend(self, text: bytes, finished: list[bytes], replace: bool) -> None:
        """Add ``text`` to the open line (to an empty one if ``replace``); pieces past the limit are finished."""
        if replace:
            self._parts, self._size = [], 0
        at = 0
        while self._size + len(text) - at > self._limit:
            room = self._limit - self._size
            piece = b"".join([*self._parts, text[at:at + room]])
            at += room
            cut = char_boundary(piece, text[at])
            finished.append(piece[:cut] if cut < len(piece) else piece)
            self._parts = [piece[cut:]] if cut < len(piece) else []
            self._size = len(piece) - cut
        if at < len(text):
            self._parts.append(text[at:] if at else text)
            self._size += len(text) - at


def char_boundary(head: bytes, next_byte: int) -> int:
    """Where to cut ``head`` so that no UTF-8 character is split when ``next_byte`` follows it."""
    if not 0x80 <= next_byte < 0xC0:  # not a continuation byte: the cut falls between characters
        return len(head)
    for back in range(1, 4):
        at = len(head) - back
        if at <= 0 or head[at] < 0x80:
            break
        if head[at] >= 0xC0:  # the lead byte of the character that ``next_byte`` continues
            return at
    return len(head)  # not UTF-8 there: cut anywhere


def remembered(line: bytes) -> str:
    """A finished line as the failure summary keeps it: at most ``REMEMBERED_CHARS`` characters."""
    head = 4 * REMEMBERED_CHARS  # enough bytes for that many characters, whatever their width
    text = line[:head].decode("utf-8", "replace")
    if len(line) <= head and len(text) <= REMEMBERED_CHARS:
        return text
    return text[:REMEMBERED_CHARS] + CUT_MARK
