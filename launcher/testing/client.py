"""The pytest process's handle on its rank server (``launcher.testing.server``): start, ask, stop.

One server per pytest process (each pytest-xdist worker has its own). It is
started as a new interpreter (``subprocess``: nothing forked from a process
that may hold threads), early enough that its torch import overlaps the
collection, and stopped by closing its stdin: it kills the ranks of a test in
progress, removes the session's folder and exits. A server that does not exit in ``STOP_WAIT`` seconds is killed.
Never imports torch.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from typing import IO, Any

from launcher.testing.messages import GpuQuery, RunReply, RunRequest, receive, send

STOP_WAIT = 10.0  # seconds: the server kills the ranks of a test in progress, then exits
LOG_TAIL = 2000  # characters of the server's log quoted when it died


class ServerGone(RuntimeError):
    """The rank server died (or never started): its log's last lines are the message."""


class RankServer:
    def __init__(self, folder: str) -> None:
        self._folder = folder
        self._log_path = os.path.join(folder, "server.log")
        self._process: subprocess.Popen[bytes] | None = None
        self._ready = False
        self._gpus: int | None = None

    def start(self) -> None:
        """Start the server if none runs; returns at once (it says it is ready with its first message)."""
        if self._process is not None:
            return
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (root, env.get("PYTHONPATH"))))
        os.makedirs(self._folder, exist_ok=True)  # a server that stopped removed it
        with open(self._log_path, "ab") as log:
            self._process = subprocess.Popen([sys.executable, "-m", "launcher.testing.server", self._folder], env=env,
                                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
        self._ready = False

    def run(self, request: RunRequest) -> RunReply:
        reply = self._ask(request)
        if not isinstance(reply, RunReply):
            raise ServerGone(f"the rank server answered {reply!r}")
        return reply

    def gpus(self) -> int:
        """CUDA devices a rank sees (asked once)."""
        if self._gpus is None:
            self._gpus = int(self._ask(GpuQuery()))
        return self._gpus

    def _ask(self, message: Any) -> Any:
        self.start()
        process = self._process
        assert process is not None and process.stdin is not None and process.stdout is not None
        try:
            if not self._ready:
                self._expect_ready(process.stdout)
            send(process.stdin.fileno(), message)
            reply = receive(process.stdout.fileno())
        except BrokenPipeError:
            reply = None
        except BaseException:  # Ctrl-C, pytest-timeout: the test in progress ends with the server
            self.stop()
            raise
        if reply is None:
            self.stop()
            raise ServerGone(self._log_tail())
        return reply

    def _expect_ready(self, replies: IO[bytes]) -> None:
        if receive(replies.fileno()) != "ready":
            self.stop()
            raise ServerGone(self._log_tail())
        self._ready = True

    def stop(self) -> None:
        """Close the server's stdin (it stops the ranks of a test in progress and exits); kill it if it lingers."""
        process, self._process = self._process, None
        if process is None:
            return
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        try:
            process.wait(STOP_WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _log_tail(self) -> str:
        try:
            with open(self._log_path, encoding="utf-8", errors="replace") as handle:
                text = handle.read()[-LOG_TAIL:]
        except OSError:
            text = ""
        return "the rank server died" + (f"; its last output:\n{text}" if text.strip() else "")
