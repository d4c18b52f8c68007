"""The output router on its own: no FIFO outlives its stream, and a console whose reader left gets nothing more."""

from __future__ import annotations

import os
import select
import stat
import sys
from pathlib import Path

import pytest

from launcher.plan.model import OutputPlan
from launcher.protocol import PIPE_NAMES
from launcher.supervise.output import OutputRouter

pytestmark = pytest.mark.timeout(30)


def _fifos(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if stat.S_ISFIFO(path.lstat().st_mode))


def test_the_fifos_of_a_rank_that_never_connected_go_with_its_attempt_and_at_the_end(tmp_path: Path) -> None:
    router = OutputRouter(OutputPlan(console_ranks=None, hidden=frozenset(), write_files=False, nprocs=1,
                                     prefix_template=None, role="default"))
    first, second = tmp_path / "attempt_0" / "0", tmp_path / "attempt_1" / "0"
    first.mkdir(parents=True), second.mkdir(parents=True)
    try:
        router.attach(0, 0, str(first))
        assert _fifos(tmp_path) == sorted(f"attempt_0/0/{name}" for name in PIPE_NAMES.values())
        router.attach(0, 0, str(second))  # a restart: the rank never opened the first attempt's FIFOs
        assert _fifos(tmp_path) == sorted(f"attempt_1/0/{name}" for name in PIPE_NAMES.values())
    finally:
        router.close()
    assert _fifos(tmp_path) == []


def test_a_console_whose_reader_left_gets_nothing_more_and_the_log_goes_on(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    reader, writer = os.pipe()
    console = open(writer, "w")  # noqa: SIM115  # closed below
    monkeypatch.setattr(sys, "stdout", console)
    os.close(reader)  # the reader went away (``| head``): the next write gets EPIPE
    router = OutputRouter(OutputPlan(console_ranks=None, hidden=frozenset(), write_files=True, nprocs=1,
                                     prefix_template=None, role="default"))
    try:
        router.attach(0, 0, str(tmp_path))
        rank_stdout = os.open(tmp_path / PIPE_NAMES["stdout"], os.O_WRONLY)
        os.write(rank_stdout, b"first\n")
        ready, _, _ = select.select([router.closed_console_fd()], [], [], 10)
        assert ready and router.closed_console == "stdout"
        assert os.path.samestat(os.fstat(console.fileno()), os.stat(os.devnull))  # nothing left to raise at exit
        os.write(rank_stdout, b"second\n")  # after it: the log only
        os.close(rank_stdout)
    finally:
        router.close()
        console.close()  # its fd is /dev/null now: what it still holds is dropped, nothing raises
    assert (tmp_path / "stdout.log").read_bytes() == b"first\nsecond\n"
