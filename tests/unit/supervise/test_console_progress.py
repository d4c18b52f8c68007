"""The progress line: its words, the lines mode, and the bar drawn into a fake terminal beside worker output."""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from launcher.plan.model import OutputPlan
from launcher.protocol import PIPE_NAMES
from launcher.supervise.console_progress import BarProgress, LinesProgress, console_progress
from launcher.supervise.output import OutputRouter
from launcher.supervise.progress_text import ProgressText, plain_line, progress_text
from launcher.testing.terminal import screen_lines

WORLD = {"slowest": {"rank": 3, "samples_per_s": 201.2, "ratio": 0.623}, "starved": None}


def _record(step: int, **fields: Any) -> dict[str, Any]:
    return {"v": 1, "time": 1.0, "rank": 0, "step": step, "total_steps": 1000, "epoch": 1, "samples": 32 * step,
            "steps_per_s": 10.1, "samples_per_s": 323.4, "data_wait": 0.04,
            "metrics": {"lr": 0.1, "loss": 0.5213}, "final": False, **fields}


def _text(step: int, world: dict[str, Any] | None = None, **fields: Any) -> ProgressText:
    return progress_text(0, _record(step, **fields), world)


def test_the_words_of_the_progress_line() -> None:
    text = _text(120, WORLD)
    assert text.head == "step 120/1000"
    assert text.info == "epoch 1, 323 samples/s, ETA 1:27, loss 0.5213, lr 0.1; slowest: rank 3 at 0.62x"
    assert plain_line(text) == f"launcher: step 120/1000 (12%), {text.info}"
    starved = {"slowest": None, "starved": {"rank": 2, "data_wait": 0.27}}
    bare = progress_text(4, {"step": 7, "steps_per_s": 2.5, "samples": 0, "metrics": {}}, starved)
    assert plain_line(bare) == "launcher: rank 4: step 7, 2.50 steps/s; starved: rank 2 waits 27%"
    assert progress_text(0, _record(100, steps_per_s=0.01), None).info.count("ETA 25:00:00") == 1


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_lines_mode_prints_a_plain_line_every_n_seconds_and_one_at_the_end() -> None:
    out, clock = io.StringIO(), _Clock()
    display = LinesProgress(out, every=30, clock=clock)
    display.update(_text(10))
    assert out.getvalue() == ""  # not yet 30 s
    clock.now = 30
    display.update(_text(300, WORLD))
    clock.now = 45
    display.update(_text(450, metrics={"loss": 0.4, "note": "a\nb\x1b[2J"}))  # 15 s later: not yet
    display.finish(None)  # the end: the latest progress, once
    display.finish(None)
    lines = out.getvalue().splitlines()
    assert lines == [
        "launcher: step 300/1000 (30%), epoch 1, 323 samples/s, ETA 1:09, loss 0.5213, lr 0.1; "
        "slowest: rank 3 at 0.62x",
        "launcher: step 450/1000 (45%), epoch 1, 323 samples/s, ETA 0:54, loss 0.4, note a b [2J",
    ]
    assert not any(char < " " for char in out.getvalue().replace("\n", ""))  # no control characters


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_redraws_in_place_and_worker_lines_scroll_above_it() -> None:
    terminal = _Terminal()
    bar = BarProgress(terminal, ncols=120)
    bar.update(_text(100))
    bar.update(_text(200, WORLD))
    assert "\n" not in terminal.getvalue() and terminal.getvalue().count("\r") >= 2  # redrawn in place
    assert screen_lines(terminal.getvalue()) == [
        "step 200/1000  20%|####                | epoch 1, 323 samples/s, ETA 1:19, loss 0.5213, lr 0.1; "
        "slowest: rank 3 at 0.62x"]
    with bar.above(("rank0", "stdout"), ends_line=True):
        terminal.write("[rank0]: a worker line\n")
    screen = screen_lines(terminal.getvalue())
    assert screen[0] == "[rank0]: a worker line" and screen[1].startswith("step 200/1000  20%|####")
    bar.finish(_text(1000, steps_per_s=10.0))
    screen = screen_lines(terminal.getvalue())
    assert screen == ["[rank0]: a worker line",
                      "step 1000/1000 100%|####################| epoch 1, 323 samples/s, loss 0.5213, lr 0.1", ""]


def test_the_bar_waits_while_a_passed_through_line_is_open() -> None:
    terminal = _Terminal()
    bar = BarProgress(terminal, ncols=80)
    bar.update(_text(10))
    with bar.above(0, ends_line=False):
        terminal.write("\rtheir own bar 1/3")
    with bar.above(0, ends_line=False):
        terminal.write("\rtheir own bar 2/3")
    bar.update(_text(20))  # not drawn over their line
    assert screen_lines(terminal.getvalue()) == ["their own bar 2/3"]
    with bar.above(0, ends_line=True):
        terminal.write("\rtheir own bar 3/3\n")
    screen = screen_lines(terminal.getvalue())
    assert screen[0] == "their own bar 3/3" and screen[1].startswith("step 20/1000")


def test_a_bar_whose_console_failed_stops_drawing() -> None:
    terminal = _Terminal()
    bar = BarProgress(terminal, ncols=80)
    terminal.close()
    bar.update(_text(10))  # ValueError inside: the display ends, nothing raises
    bar.finish(_text(20))


def test_the_mode_chooses_the_display(monkeypatch: pytest.MonkeyPatch) -> None:
    assert console_progress("off", _Terminal(), 30) is None
    assert isinstance(console_progress("auto", _Terminal(), 30), BarProgress)
    assert isinstance(console_progress("auto", io.StringIO(), 30), LinesProgress)
    assert isinstance(console_progress("bar", io.StringIO(), 30), BarProgress)
    assert isinstance(console_progress("lines", _Terminal(), 30), LinesProgress)


def test_tqdm_is_imported_only_when_a_bar_is_drawn() -> None:
    import subprocess

    code = ("import io, sys\nfrom launcher.supervise.rank_monitor import RankMonitor\n"
            "from launcher.supervise.console_progress import console_progress\n"
            "console_progress('bar', io.StringIO(), 30)\nassert 'tqdm' not in sys.modules\n")
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr


def _wait_for(condition: Callable[[], bool], timeout: float = 10) -> None:
    """Poll ``condition`` (the router writes from its own thread) until it holds, or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_the_router_writes_a_passed_through_rank_and_launcher_lines_above_the_bar(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    bar = BarProgress(terminal, ncols=80)
    router = OutputRouter(OutputPlan(console_ranks=None, hidden=frozenset(), write_files=False, nprocs=1,
                                     prefix_template=None, role="default"), bar)  # one rank: bytes as they come
    try:
        router.attach(0, 0, str(tmp_path))
        rank_stderr = os.open(tmp_path / PIPE_NAMES["stderr"], os.O_WRONLY)
        bar.update(_text(10))
        os.write(rank_stderr, b"a whole line\n")
        _wait_for(lambda: screen_lines(terminal.getvalue())[0] == "a whole line")
        _wait_for(lambda: screen_lines(terminal.getvalue())[1].startswith("step 10/1000"))
        os.write(rank_stderr, b"\rtheir bar 1/2")
        _wait_for(lambda: screen_lines(terminal.getvalue())[-1] == "their bar 1/2")
        bar.update(_text(20))
        assert screen_lines(terminal.getvalue())[-1] == "their bar 1/2"  # the open line is left alone
        os.write(rank_stderr, b"\rtheir bar 2/2\n")
        _wait_for(lambda: screen_lines(terminal.getvalue())[-1].startswith("step 20/1000"))
        router.say("launcher: a line of its own")
        assert screen_lines(terminal.getvalue())[1:3] == ["their bar 2/2", "launcher: a line of its own"]
        assert screen_lines(terminal.getvalue())[3].startswith("step 20/1000")
        os.close(rank_stderr)
    finally:
        router.close()


def test_nothing_is_shown_until_a_rank_made_a_step() -> None:
    from launcher.supervise.rank_monitor import shown_progress

    idle = {"v": 1, "time": 100.0, "rank": 0, "step": 0, "steps_per_s": 0.0, "interval": 1.0, "final": True}
    assert shown_progress({0: idle, 1: {**idle, "rank": 1}}, None, now=100.5, interval=1.0) is None
    stepping = {**idle, "rank": 1, "step": 3, "final": False}
    shown = shown_progress({0: idle, 1: stepping}, None, now=100.5, interval=1.0)
    assert shown is not None and shown.rank == 0 and shown.head == "step 0"  # rank 0 still leads once any stepped
