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


@pytest.mark.parametrize(("nprocs", "console_ranks", "hidden", "template", "as_is"), [
    (1, None, frozenset(), None, True),  # one rank: its bytes pass through
    (4, frozenset({2}), frozenset(), None, True),  # --local-ranks-filter 2: only rank 2 is shown, unprefixed
    (4, None, frozenset(), None, False),  # several ranks: prefixed lines
    (1, None, frozenset({(0, "stderr")}), None, False),  # its stderr redirected away from the console
    (1, None, frozenset(), "[${rank}]: ", False),  # a prefix template prefixes one rank too
])
def test_which_ranks_output_reaches_the_console_as_it_was(nprocs: int, console_ranks: frozenset[int] | None,
                                                          hidden: frozenset[tuple[int, str]], template: str | None,
                                                          as_is: bool) -> None:
    """What the failure summary need not repeat (cli/summary.py)."""
    plan = OutputPlan(console_ranks=console_ranks, hidden=hidden, write_files=False, nprocs=nprocs,
                      prefix_template=template, role="default")
    rank = next(iter(console_ranks)) if console_ranks else 0
    assert plan.shows_as_is(rank) is as_is
