"""One output stream's bytes as console text and finished lines, in time linear in the bytes.

The line logic of the output router (``output.py``), without FIFOs or threads. A line's text is its
final carriage-return state: what follows its last ``\\r`` that is followed by text (so ``\\r\\n``
keeps the text before it). While a line is open only that state is kept, at most ``PENDING_LIMIT``
bytes of it: a longer line comes out in pieces of that size (cut between UTF-8 characters), each a
line of its own. Every byte is searched once. Unprefixed, the console gets the bytes as they come
(decoded, so progress bars keep working); prefixed, it gets each finished line through the prefix.
Finished lines also come back for the failure summary, cut at ``REMEMBERED_CHARS`` characters.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable

PENDING_LIMIT = 1 << 20  # bytes of an open line kept; past it, the line is emitted in pieces
REMEMBERED_CHARS = 2000  # characters of a finished line kept for the failure summary
CUT_MARK = " [...]"
_CR = 0x0D


class StreamText:
    """Turns one stream's bytes into console text and finished lines.

    ``prefix``: what a finished line looks like on the console (without its newline), or None for a
    console that gets the bytes as they come.
    """

    def __init__(self, prefix: Callable[[str], str] | None, limit: int = PENDING_LIMIT) -> None:
        if limit < 4:
            raise ValueError("limit must leave room for a UTF-8 character (4 bytes)")
        self._prefix = prefix
        self._limit = limit
        self._pending = bytearray()  # the open line's text since its last carriage return
        self._after_cr = False  # a ``\r`` followed the pending text: new text replaces it
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    @property
    def pending(self) -> bytes:
        """The open line's current text (empty when no line is open)."""
        return bytes(self._pending)

    def feed(self, data: bytes) -> tuple[str, list[str]]:
        """The console text for ``data`` and the lines it finished (as kept for the summary)."""
        finished: list[bytes] = []
        start = 0
        while True:
            newline = data.find(b"\n", start)
            self._add(data, start, len(data) if newline < 0 else newline, finished)
            if newline < 0:
                break
            finished.append(bytes(self._pending))
            self._pending.clear()
            self._after_cr = False
            start = newline + 1
        if self._prefix is None:
            console = self._decoder.decode(data)
        else:
            prefix = self._prefix
            console = "".join([prefix(line.decode("utf-8", "replace")) + "\n" for line in finished])
        return console, [remembered(line) for line in finished]

    def _add(self, data: bytes, start: int, end: int, finished: list[bytes]) -> None:
        """Add ``data[start:end]`` (no newline in it) to the open line."""
        view = memoryview(data)
        stop = end
        while stop > start and data[stop - 1] == _CR:  # a trailing \r replaces nothing until text follows
            stop -= 1
        first = data.find(b"\r", start, stop)
        head_end = stop if first < 0 else first
        if head_end > start:  # text before any \r continues the open line (or replaces it after a \r)
            self._extend(view[start:head_end], finished, replace=self._after_cr)
        if first >= 0:
            last = data.rfind(b"\r", first, stop)
            if last - first > self._limit:  # a state between the two may pass the limit: its pieces come out
                self._long_states(data, first, last, finished)
            self._extend(view[last + 1:stop], finished, replace=True)
        if stop > start:
            self._after_cr = False
        if stop < end:
            self._after_cr = True

    def _long_states(self, data: bytes, first: int, last: int, finished: list[bytes]) -> None:
        """The pieces of every state between the carriage returns at ``first`` and ``last`` past the limit."""
        at = first
        while at < last:
            following = data.find(b"\r", at + 1, last + 1)
            if following - at - 1 > self._limit:
                self._extend(memoryview(data)[at + 1:following], finished, replace=True)
            at = following

    def _extend(self, text: memoryview, finished: list[bytes], replace: bool) -> None:
        """Add ``text`` to the open line (to an empty one if ``replace``); pieces past the limit are finished."""
        if replace:
            self._pending.clear()
        while len(self._pending) + len(text) > self._limit:
            room = self._limit - len(self._pending)
            self._pending += text[:room]
            text = text[room:]
            cut = char_boundary(self._pending, text[0])
            finished.append(bytes(self._pending[:cut]))
            del self._pending[:cut]
        self._pending += text


def char_boundary(head: bytes | bytearray, next_byte: int) -> int:
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
