"""The output router's line logic without FIFOs: bytes in, console text and finished lines out."""

from __future__ import annotations

import pytest

from launcher.supervise.lines import CUT_MARK, LAST_LINES, PENDING_LIMIT, REMEMBERED_CHARS, StreamText

pytestmark = pytest.mark.timeout(30)
CHUNKS = (1, 2, 3, 7, 64, 1 << 20)  # read sizes: every split point, and all at once


def tagged(text: str) -> str:
    return f"P> {text}\n"


def feed(data: bytes, chunk: int, prefixed: bool, limit: int = PENDING_LIMIT) -> tuple[str, list[str], StreamText]:
    """Everything the router would write and remember, with ``data`` arriving ``chunk`` bytes per read."""
    stream = StreamText(tagged if prefixed else None, limit)
    console, lines = [], []
    for at in range(0, len(data), chunk):
        text, finished = stream.feed(data[at:at + chunk])
        console.append(text)
        lines += finished
    return "".join(console), lines, stream


OUTPUT = (b"plain\n"
          b"\rprogress 1/3\rprogress 2/3\rprogress 3/3\n"  # tqdm: each state replaces the one before
          b"windows line\r\n"  # a carriage return right before the newline keeps the text
          b"bar\r      \rcleared and rewritten\n"  # tqdm(leave=False) wipes its bar, then a line follows
          b"\n"
          b"caf\xc3\xa9 \xff end\n"  # valid two-byte UTF-8, then an invalid byte
          b"open at the end")
FINAL_STATES = ["plain", "progress 3/3", "windows line", "cleared and rewritten", "", "café \ufffd end"]


@pytest.mark.parametrize("chunk", CHUNKS)
def test_prefixed_console_gets_each_line_in_its_final_state(chunk):
    console, lines, stream = feed(OUTPUT, chunk, prefixed=True)
    assert console == "".join(tagged(line) for line in FINAL_STATES)
    assert lines == FINAL_STATES
    assert stream.pending == b"open at the end"


@pytest.mark.parametrize("chunk", CHUNKS)
def test_unprefixed_console_gets_every_byte_as_it_comes(chunk):
    console, lines, _ = feed(OUTPUT, chunk, prefixed=False)
    assert console == OUTPUT.decode("utf-8", "replace")  # a character split across reads is whole
    assert lines == FINAL_STATES


def test_the_open_line_is_finished_by_a_newline_and_keeps_only_its_last_state():
    stream = StreamText(tagged)
    for step in range(1000):
        assert stream.feed(f"\rstep {step}".encode()) == ("", [])
    assert stream.pending == b"step 999"
    assert stream.feed(b"\r") == ("", []) and stream.pending == b"step 999"
    assert stream.feed(b"\n") == ("P> step 999\n", ["step 999"])
    assert stream.pending == b""


@pytest.mark.parametrize("chunk", (1, 5, 8, 64))
def test_a_line_past_the_limit_comes_out_in_pieces(chunk):
    data = b"abcdefghijklmnopqrst\nABCDEFGHIJ\rab\rCDEFGHIJKLMNOPQRS\rxy\n"
    # Every state that passes the limit comes out, however the reads fall; a \r after a piece starts anew.
    pieces = ["abcdefgh", "ijklmnop", "qrst", "ABCDEFGH", "CDEFGHIJ", "KLMNOPQR", "xy"]
    console, lines, _ = feed(data, chunk, prefixed=True, limit=8)
    assert lines == pieces
    assert console == "".join(tagged(line) for line in pieces)
    console, lines, _ = feed(data, chunk, prefixed=False, limit=8)
    assert console == data.decode() and lines == pieces


@pytest.mark.parametrize("chunk", (1, 3, 64))
def test_pieces_never_split_a_character(chunk):
    data = "aaaaaaaé€😀zz\n".encode()  # 2-, 3- and 4-byte characters, each across a cut of 8 bytes
    _, lines, _ = feed(data, chunk, prefixed=True, limit=8)
    assert lines == ["aaaaaaa", "é€", "😀zz"]


def test_invalid_utf8_split_across_reads_becomes_replacement_characters():
    stream = StreamText(tagged)
    assert stream.feed(b"x\xe2\x82") == ("", [])  # the start of a 3-byte character...
    assert stream.feed(b"y \xc3") == ("", [])  # ...that never ends, and another
    assert stream.feed(b"\xa9\n") == ("P> x\ufffdy é\n", ["x\ufffdy é"])
    raw = StreamText(None)
    assert raw.feed(b"x\xe2\x82") == ("x", [])
    assert raw.feed(b"y\n") == ("\ufffdy\n", ["x\ufffdy"])


def test_the_open_line_stays_within_the_limit():
    stream = StreamText(None)
    piece = b"x" * 10_000
    emitted = 0
    for _ in range(1000):  # 10 MB without a newline
        _, finished = stream.feed(piece)
        emitted += len(finished)
        assert len(stream.pending) <= PENDING_LIMIT
    assert emitted == (1000 * len(piece) - 1) // PENDING_LIMIT  # a piece comes out once more bytes follow it


def test_the_summary_remembers_a_long_line_cut():
    text = "é" * (REMEMBERED_CHARS + 10)
    console, lines, _ = feed(text.encode() + b"\n", 65536, prefixed=True)
    assert console == tagged(text)  # the console gets it whole
    assert lines == [text[:REMEMBERED_CHARS] + CUT_MARK]
    assert feed(b"y" * REMEMBERED_CHARS + b"\n", 65536, prefixed=True)[1] == ["y" * REMEMBERED_CHARS]


def test_many_lines_in_one_read_come_back_as_the_summary_keeps_them():
    data = b"".join(b"line %d\n" % n for n in range(100)) + b"open"
    console, lines = StreamText(tagged).feed(data)
    assert console == "".join(f"P> line {n}\n" for n in range(100))
    assert lines == [f"line {n}" for n in range(100 - LAST_LINES, 100)]  # no more than the summary keeps
