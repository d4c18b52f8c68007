"""The elastic agent in a process forked from the torch-preloaded server, so the launcher never imports torch.

The launcher plans, starts the server and the reaper, then asks the server for
one more child: this process, which runs elastic's agent (``engine.run_agent``)
and asks the same server for the workers. Forked from the server, the agent
shares torch's pages with it and with the workers instead of holding a private
copy of torch (about 150 MiB), and it starts with a fork instead of an import.

Launcher side: ``run_in_server``. Agent side: ``host_agent``. Messages on
their pipe, agent to launcher: ``("pids", [pid, ...])`` as workers start (the
launcher stops them itself if the agent dies), then ``("result", RunResult)``,
``("error", LauncherError)`` or ``("crash", traceback text)``. The launcher forwards the plan's stop signals to
the agent, which leads its own process group: a Ctrl-C in the terminal reaches
the launcher only, and the agent sees each signal once.

When the launcher is gone (its process group was SIGKILLed and the server, the agent's
parent, with it: Linux then signals the agent; or the reaper says so; or the pipe
broke), the agent stops its workers as after SIGTERM and exits without a word: nobody
reads its output or its result any more.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any

from launcher import trace
from launcher.compat import mp
from launcher.errors import LauncherError
from launcher.plan.model import LaunchPlan
from launcher.platforms import name_this_process, signal_when_parent_dies
from launcher.protocol import AGENT_SAVE_SIGNAL
from launcher.result import RunResult, signal_number
from launcher.supervise.descendants import Strays
from launcher.supervise.reaper import KILL, LAUNCHER_GONE, Reaper, signal_group
from launcher.supervise.save_stop import SaveAndStop

AGENT_PROCESS_NAME = "launcher-agent"
_AGENT_SAVE = signal_number(AGENT_SAVE_SIGNAL)


def run_in_server(plan: LaunchPlan, log_dir: str, reaper: Reaper) -> RunResult:
    """Run the plan's agent in a child of the running forkserver; its result, or its error raised here."""
    context = multiprocessing.get_context("forkserver")
    ours, theirs = context.Pipe()
    process = context.Process(target=host_agent, args=(theirs, plan, log_dir), name=AGENT_PROCESS_NAME)
    forwarder = _Forwarder()
    pids: list[int] = []
    trace.mark("launcher: agent process start")
    with forwarder.installed(plan.stop.signals, plan.stop.save_signal):
        try:
            process.start()
        except (EOFError, OSError):
            if not forwarder.received:
                raise
            # The stop signal reached the server too and ended it (slurmstepd signals every process of a
            # step: scancel, srun --kill-on-bad-exit): the job was stopped before its agent started.
            return RunResult(interrupted_by=signal.Signals(forwarder.received[-1]).name)
        theirs.close()
        assert process.pid is not None  # started
        pids.append(process.pid)
        reaper.watch_agent(process.pid, plan.stop.grace_period)  # stopped by the reaper if this process dies
        forwarder.forward_to(process.pid)
        message = _receive(ours, pids)
        process.join()
    ours.close()
    trace.mark("launcher: agent process end")
    kind: str
    value: Any
    kind, value = message if message is not None else ("died", None)
    if kind == "result":
        result: RunResult = value
        return result
    if kind == "error":
        raise value
    for pid in pids:  # the agent could not stop what it started; these groups were running moments ago
        signal_group(pid, KILL)
    server = mp.forkserver_pid()
    if server is not None:  # and what the ranks left outside their groups, re-parented to the server
        Strays(server, spare=()).stop()
    if kind == "died" and forwarder.received and process.exitcode == -forwarder.received[-1]:
        return RunResult(interrupted_by=signal.Signals(forwarder.received[-1]).name)
    detail = f":\n{value}" if kind == "crash" else f" with exit code {process.exitcode}, before it reported"
    raise RuntimeError(f"the launcher's agent process failed{detail}")


def _receive(channel: Connection, pids: list[int]) -> tuple[str, Any] | None:
    """Note worker pids until the final message; None if the agent died first."""
    while True:
        try:
            kind, value = pickle.loads(channel.recv_bytes())
        except EOFError:
            return None
        if kind != "pids":
            return kind, value
        pids.extend(value)


class _Forwarder:
    """The launcher's handler for stop signals, and for the save-and-stop one: pass each on to the agent (once it
    exists), the latter as ``AGENT_SAVE_SIGNAL`` (whatever the user sent, the agent's process knows that one)."""

    def __init__(self) -> None:
        self._pid: int | None = None
        self.received: list[int] = []  # stop signals
        self._save_asked = False

    @contextlib.contextmanager
    def installed(self, names: tuple[str, ...], save_signal: str | None = None) -> Iterator[None]:
        """Handle ``names`` while in the block (signal handlers belong to the main thread: elsewhere, none)."""
        main_thread = threading.current_thread() is threading.main_thread()
        previous = {number: signal.signal(number, self._handle) for number in _numbers(names) if main_thread}
        save = signal_number(save_signal)
        if save is not None and _AGENT_SAVE is not None and main_thread:
            previous[save] = signal.signal(save, self._handle_save)
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    def forward_to(self, pid: int) -> None:
        self._pid = pid
        for number in self.received:  # arrived while the agent was starting
            self._send(number)
        if self._save_asked:
            self._send_save()

    def _handle(self, number: int, _frame: FrameType | None) -> None:
        self.received.append(number)
        if self._pid is not None:
            self._send(number)

    def _handle_save(self, _number: int, _frame: FrameType | None) -> None:
        self._save_asked = True
        if self._pid is not None:
            self._send_save()

    def _send_save(self) -> None:
        assert _AGENT_SAVE is not None  # handled only where it exists
        self._send(_AGENT_SAVE)

    def _send(self, number: int) -> None:
        assert self._pid is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._pid, number)


def _numbers(names: tuple[str, ...]) -> list[int]:
    return [int(getattr(signal, name)) for name in names if hasattr(signal, name)]


class LauncherGone(Exception):
    """The launcher's end of the pipe is closed: it died. Raised out of elastic's run(), which stops the workers."""


class _ChannelWatcher:
    """The agent's side of ``WorkerWatcher``: worker pids go to the launcher."""

    def __init__(self, channel: Connection) -> None:
        self._channel = channel

    def watch(self, pids: list[int]) -> None:
        try:
            send(self._channel, ("pids", pids))
        except OSError:  # BrokenPipeError, ConnectionResetError
            _silence()
            raise LauncherGone from None


def host_agent(channel: Connection, plan: LaunchPlan, log_dir: str) -> None:
    """The agent process's target: run the plan, send the outcome, return."""
    save_stop = SaveAndStop(plan.stop.save_signal)
    with save_stop.receiving(_AGENT_SAVE if plan.stop.save_signal else None):  # before the launcher forwards one
        _host_agent(channel, plan, log_dir, save_stop)


def _host_agent(channel: Connection, plan: LaunchPlan, log_dir: str, save_stop: SaveAndStop) -> None:
    from torch.distributed.elastic.multiprocessing.api import SignalException

    from launcher.supervise.engine import run_agent

    trace.mark("agent: host_agent start")
    mp.use_parent_server()
    name_this_process(AGENT_PROCESS_NAME)
    if hasattr(os, "setpgid"):
        os.setpgid(0, 0)
    for number in _numbers(plan.stop.signals):  # as elastic's own handler does once the workers start
        signal.signal(number, _raise_signal_exception)
    if LAUNCHER_GONE is not None:
        signal.signal(LAUNCHER_GONE, _launcher_gone)
        signal_when_parent_dies(LAUNCHER_GONE)  # the server: it dies with the launcher's process group
    message: tuple[str, Any]
    try:
        message = ("result", run_agent(plan, log_dir, _ChannelWatcher(channel), save_stop))
    except LauncherGone:  # the workers were stopped on the way out of elastic's run()
        return
    except SignalException as stop:  # before elastic's handlers were in place
        message = ("result", RunResult(interrupted_by=signal.Signals(stop.sigval).name))
    except LauncherError as error:
        message = ("error", error)
    except Exception:  # our bug, or the machine's: the launcher shows it and stops the workers
        message = ("crash", traceback.format_exc())
    _gone.append(True)  # from here on that signal only silences this process
    try:
        send(channel, message)
    except OSError:  # BrokenPipeError, ConnectionResetError: the launcher is gone, nobody to tell
        _silence()
    channel.close()
    trace.mark("agent: host_agent end")


def send(channel: Connection, message: tuple[str, Any]) -> None:
    """Send with plain pickle: tensors in return values travel by value.

    A connection's own pickler shares a tensor's storage through a file
    descriptor that the receiver fetches from the sender later; the agent has
    exited by then.
    """
    channel.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))


_gone: list[bool] = []  # not empty once the launcher is known gone, or the result is on its way


def _launcher_gone(_number: int, _frame: FrameType | None) -> None:
    """The launcher died: stop the workers as after SIGTERM, quietly (once; later, only quietly)."""
    from torch.distributed.elastic.multiprocessing.api import SignalException

    _silence()
    if not _gone:
        _gone.append(True)
        raise SignalException(f"process {os.getpid()}: the launcher is gone", sigval=signal.SIGTERM)


def _silence() -> None:
    """Send this process's stdout and stderr (and its children's: a restarted resource tracker's) to /dev/null."""
    with contextlib.suppress(OSError, ValueError):
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        with contextlib.suppress(OSError):
            os.dup2(devnull, fd)
    os.close(devnull)


def _raise_signal_exception(number: int, _frame: FrameType | None) -> None:
    from torch.distributed.elastic.multiprocessing.api import SignalException

    raise SignalException(f"process {os.getpid()} got signal {number}", sigval=signal.Signals(number))
