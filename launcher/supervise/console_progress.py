"""Rank 0's progress on the launcher's stderr: a bar redrawn in place (tqdm), or a plain line every N seconds.

Worker output reaches the same console from the output router's thread. Both go through one lock: the
router writes worker bytes inside ``above()``, which clears the bar first and redraws it after, so worker
lines scroll above a bar that stays on the last line. A rank whose bytes pass through untouched (one rank,
no prefix: its own carriage-return bars) may leave its line open; nothing is drawn until that line ends.
Drawing never raises: a console that fails (its reader went away) ends the display, and the router
reports the closed console. tqdm is imported when the first bar is drawn, with its monitor thread off.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal, TextIO

from launcher.supervise.progress_text import ProgressText, plain_line

Mode = Literal["auto", "bar", "lines", "off"]
_CONTROL = {code: " " for code in range(32)} | {127: " "}


def printable(text: str) -> str:
    """``text`` without control characters (a metric's name or value must not move the cursor)."""
    return text.translate(_CONTROL)


class ConsoleProgress:
    """The lock and the open-line bookkeeping both displays share; subclasses draw."""

    def __init__(self, file: TextIO) -> None:
        self._file = file
        self._lock = threading.Lock()
        self._open: set[object] = set()  # router streams whose console line is open (bytes passed through)
        self._broken = False
        self._latest: ProgressText | None = None

    @contextlib.contextmanager
    def above(self, stream: object, ends_line: bool) -> Iterator[None]:
        """Around a write of worker text to the console by ``stream``: the display makes room, then comes back."""
        with self._lock:
            self._guard(self._hide)
            try:
                yield
            finally:
                if ends_line:
                    self._open.discard(stream)
                else:
                    self._open.add(stream)
                if not self._open:
                    self._guard(lambda: self._draw(self._latest))

    def update(self, text: ProgressText | None) -> None:
        """The monitor's latest progress (None: nothing new to show)."""
        with self._lock:
            if text is not None:
                self._latest = text
            if not self._open and self._latest is not None:
                self._guard(lambda: self._draw(self._latest))

    def finish(self, text: ProgressText | None) -> None:
        """The end of the run: the last state stays on the console, and the display ends."""
        with self._lock:
            if text is not None:
                self._latest = text
            self._guard(lambda: self._end(self._latest, drawable=not self._open))
            self._broken = True

    def _guard(self, action: Callable[[], None]) -> None:
        if self._broken:
            return
        try:
            action()
        except (OSError, ValueError):  # a closed or failing console: the router tells the agent
            self._broken = True

    # What a display does, under the lock.
    def _hide(self) -> None:
        pass

    def _draw(self, text: ProgressText | None) -> None:
        raise NotImplementedError

    def _end(self, text: ProgressText | None, drawable: bool) -> None:
        raise NotImplementedError


class LinesProgress(ConsoleProgress):
    """One plain line every ``every`` seconds, and one at the end; no control characters."""

    def __init__(self, file: TextIO, every: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(file)
        self._every = every
        self._clock = clock
        self._last_time = clock()
        self._last_line: str | None = None

    def _draw(self, text: ProgressText | None) -> None:
        if text is not None and self._clock() - self._last_time >= self._every:
            self._print(text)

    def _end(self, text: ProgressText | None, drawable: bool) -> None:
        if text is not None and plain_line(text) != self._last_line:
            self._print(text)

    def _print(self, text: ProgressText) -> None:
        line = printable(plain_line(text))
        self._file.write(line + "\n")
        self._file.flush()
        self._last_line, self._last_time = line, self._clock()


class BarProgress(ConsoleProgress):
    """A tqdm bar on the console's last line: ``step 120/1000  12%|██▌        | epoch 1, 323 samples/s, ...``."""

    def __init__(self, file: TextIO, ncols: int | None = None) -> None:
        super().__init__(file)
        self._ncols = ncols  # None: the terminal's width, read at each draw
        self._bar: Any = None  # a tqdm, made at the first draw
        self._shown = False

    def _hide(self) -> None:
        if self._shown:
            self._bar.clear()
            self._shown = False

    def _draw(self, text: ProgressText | None) -> None:
        if text is None:
            return
        if self._bar is None:
            self._bar = _new_bar(self._file, self._ncols, text)
        else:
            _set_bar(self._bar, text)
            self._bar.refresh()
        self._shown = True

    def _end(self, text: ProgressText | None, drawable: bool) -> None:
        if self._bar is None:
            return
        if not drawable:  # a worker's line is open: leave it, and the bar, as they are
            self._bar.disable = True
            return
        if text is not None:
            _set_bar(self._bar, text)
        self._bar.close()  # draws the last state and ends the line


def bar_format(total: int | None) -> str:
    return "{desc} {percentage:3.0f}%|{bar:20}| {info}" if total else "{desc} {info}"


def _new_bar(file: TextIO, ncols: int | None, text: ProgressText) -> Any:
    import tqdm

    class Bar(tqdm.tqdm):  # type: ignore[misc]
        """A tqdm with one more field for its format: ``{info}``, the text after the bar."""

        monitor_interval = 0  # no monitor thread of tqdm's own

        def __init__(self, info: str, **options: Any) -> None:
            self.info = info
            super().__init__(**options)

        @property
        def format_dict(self) -> dict[str, Any]:
            return {**super().format_dict, "info": self.info}

    tqdm.tqdm.monitor_interval = 0
    Bar.set_lock(threading.RLock())  # tqdm's default lock would make a multiprocessing one (a semaphore)
    return Bar(printable(text.info), file=file, total=text.total, initial=text.step, desc=printable(text.head),
               bar_format=bar_format(text.total), ncols=ncols, dynamic_ncols=ncols is None, leave=True,
               mininterval=0, delay=0)


def _set_bar(bar: Any, text: ProgressText) -> None:
    bar.total = text.total
    bar.bar_format = bar_format(text.total)
    bar.n = text.step
    bar.set_description_str(printable(text.head), refresh=False)
    bar.info = printable(text.info)


def console_progress(mode: Mode, file: TextIO, lines_every: float) -> ConsoleProgress | None:
    """The display ``mode`` asks for on ``file``; ``auto``: a bar on a terminal, plain lines elsewhere."""
    if mode == "off":
        return None
    if mode == "auto":
        mode = "bar" if _is_terminal(file) else "lines"
    return BarProgress(file) if mode == "bar" else LinesProgress(file, lines_every)


def _is_terminal(file: TextIO) -> bool:
    try:
        return file.isatty()
    except (OSError, ValueError):
        return False
