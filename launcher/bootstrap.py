"""The first code in every worker: prepare the process, then run the user's target.

Runs in a process started by elastic (forked from the torch-preloaded server,
or spawned), after elastic set the rank environment. It applies what torchrun
would have applied at interpreter start (thread counts, PYTHONPATH,
unbuffered output), ties the worker's life to its parent, runs a script or
module as ``__main__`` with torchrun's ``sys.argv``/``sys.path``/``atexit``
semantics, or calls ``fn(ctx, *args, **kwargs)`` (``fn(*args, **kwargs)`` when its
first parameter cannot take the context: ``launcher.calls``). Exceptions propagate to
elastic's ``record`` wrapper, which writes TORCHELASTIC_ERROR_FILE: no
``@record`` is needed in user code.

Never imports the launch side (cli, config, plan, preflight, supervise): only
the worker/launcher contract (``protocol``), ``compat.mp`` and the runtime.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import multiprocessing
import os
import runpy
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from launcher import trace
from launcher.calls import call_problem, takes_context
from launcher.compat import mp
from launcher.platforms import signal_when_parent_dies
from launcher.protocol import (
    ERROR_FILE_VARIABLE,
    PIPE_NAMES,
    PROGRESS_FILE,
    STACKS_FILE,
    RaisedError,
    WorkerPayload,
    main_thread_header,
    rank_dir,
    write_error_file,
)
from launcher.rlimits import restore_open_files
from launcher.targets import FunctionTarget, ModuleTarget, ScriptTarget


def run_worker(payload: WorkerPayload) -> Any:
    """Elastic's function entrypoint for every rank."""
    trace.mark("worker: run_worker start")
    fresh_signal_dispositions()
    restore_open_files(payload.open_files_limit)  # the agent and the server raised theirs; the user's is this
    _own_process_group()
    _die_with_parent()
    _keep_launch_fds_from_exec()
    if payload.start_method != "spawn":
        mp.clear_inherited_atexit()  # handlers inherited from the server belong to the server
    if payload.start_method == "forkserver":
        mp.release_server_pipe()
    # multiprocessing set this process's default start method to the launcher's way of starting
    # workers; the user's code (DataLoaders included) gets the interpreter's default, as under torchrun.
    multiprocessing.set_start_method(None, force=True)
    folder = rank_dir(os.environ)
    if folder:
        _connect_output(folder)
    _enable_stack_dumps(os.path.join(folder, STACKS_FILE) if folder and payload.config.monitor.hang_timeout else None)
    _apply_startup_environment(payload)
    if folder and payload.config.monitor.hang_timeout:
        from launcher.runtime.progress import start_heartbeat

        start_heartbeat(os.path.join(folder, PROGRESS_FILE), min(1.0, payload.config.monitor.hang_timeout / 4))
    from launcher.runtime import context
    from launcher.runtime.monitor import start_monitor

    context.install_job(payload.config, payload.backend)
    monitor = start_monitor(payload.config.monitor, payload.backend, os.environ)
    try:
        return _run_to_the_end(payload)
    except SystemExit as stop:
        if stop.code in (None, 0):
            return None
        if isinstance(stop.code, int):
            raise
        when = time.time()  # sys.exit("message"): Python prints the message and exits 1; it is the failure
        with _stop_signal_held():
            _report_exit_message(str(stop.code), when)
        raise SystemExit(1) from None
    except BaseException as error:
        when = time.time()
        with _stop_signal_held():
            _report_failure(error, when)
        raise SystemExit(1) from None  # not an Exception: elastic's record() keeps our error file
    finally:
        if monitor is not None:
            monitor.stop()  # its last record, also after a failure
        mp.run_atexit()  # forked children end in os._exit: run the user's handlers here
        _flush()
        trace.mark("worker: run_worker end")


def _run_to_the_end(payload: WorkerPayload) -> Any:
    """The user's target, then its checkpointer's last save written: a writer error still fails the rank."""
    from launcher.runtime.context import finish_checkpoints

    try:
        result = _run_target(payload)
    except SystemExit as stop:
        if stop.code not in (None, 0):
            raise
        result = None
    finish_checkpoints()
    return result


# Frames of the launcher and of the machinery that calls the user's code.
_MACHINERY = (
    os.path.dirname(os.path.abspath(__file__)) + os.sep + "bootstrap.py",
    "<frozen runpy>",
    os.sep + "runpy.py",
)


def user_traceback(error: BaseException) -> str:
    """The traceback as the user's own code raised it, without the bootstrap's frames in front."""
    summary = traceback.TracebackException.from_exception(error)
    frames = list(summary.stack)
    while frames and frames[0].filename.endswith(_MACHINERY):
        frames.pop(0)
    summary.stack = traceback.StackSummary.from_list(frames)
    return "".join(summary.format())


def _report_failure(error: BaseException, when: float) -> None:
    """Print the traceback on the rank's stderr and write TORCHELASTIC_ERROR_FILE (``launcher.protocol``)."""
    text = user_traceback(error)
    sys.stderr.write(text)
    message = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__  # as a traceback ends
    _write_error_file(RaisedError(message, text, when))


def _report_exit_message(message: str, when: float) -> None:
    """``sys.exit("message")``: the message on stderr, as Python prints it, and in the error file."""
    sys.stderr.write(message + "\n")
    _write_error_file(RaisedError(message, None, when))


def _write_error_file(error: RaisedError) -> None:
    path = os.environ.get(ERROR_FILE_VARIABLE)
    if path:
        with contextlib.suppress(OSError):
            write_error_file(path, error)


@contextlib.contextmanager
def _stop_signal_held() -> Iterator[None]:
    """Hold off the launcher's stop signal (SIGTERM) in the block, then let it act as it would have.

    A rank that raised reports it (the error file says when) even if the launcher stops the job at that
    moment because another rank failed: it failed on its own, and the summary must be able to say so.
    """
    previous = signal.getsignal(signal.SIGTERM)
    if previous is None or threading.current_thread() is not threading.main_thread():
        yield  # a handler installed outside Python, or no signal handling here: nothing to hold
        return
    received: list[int] = []
    signal.signal(signal.SIGTERM, lambda number, _frame: received.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        if received:
            _flush()
            signal.raise_signal(signal.SIGTERM)


def _run_target(payload: WorkerPayload) -> Any:
    target = payload.target
    if isinstance(target, ScriptTarget):
        sys.argv = [target.as_written or target.path, *payload.args]
        if os.path.isdir(target.path):  # ``python DIR``: its __main__.py, with DIR first on sys.path (as torchrun)
            sys.path[0] = target.path
            runpy.run_path(target.path, run_name="__main__")
            return None
        sys.path[0] = os.path.dirname(target.path)
        run_script_as_main(target.path)
        return None
    if isinstance(target, ModuleTarget):
        sys.argv = ["-m", *payload.args]
        sys.path[0] = os.getcwd()
        runpy.run_module(target.module, run_name="__main__", alter_sys=True)
        return None
    fn = load_function(target)
    signature = _signature(fn)
    if signature is not None:
        problem = call_problem(target.describe(), signature, payload.args, payload.kwargs)
        if problem is not None:
            raise SystemExit(problem)  # one line, reported as the rank's message, before the call
        if not takes_context(signature):
            return fn(*payload.args, **payload.kwargs)
    from launcher.runtime.context import init

    ctx = init()
    result = fn(ctx, *payload.args, **payload.kwargs)
    # Not on a failure: closing the process group wakes the peers ("Connection closed by peer") before the
    # failure is reported with its time, and a peer would then seem to have failed first. ``init`` registered
    # ``close`` at exit: it runs after the report (``run_worker``'s ``mp.run_atexit``).
    ctx.close()
    return result


def _signature(fn: Callable[..., Any]) -> inspect.Signature | None:
    """The function's signature; None for a callable that has none Python can read (a C function)."""
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


def run_script_as_main(path: str) -> None:
    """Execute a script as ``python path`` would: ``__name__ == "__main__"``, absolute ``__file__``.

    Unlike ``runpy.run_path``, ``sys.argv[0]`` stays as the user wrote it (as under
    torchrun), and the module stays ``sys.modules["__main__"]`` afterwards, so
    pickles that name ``__main__`` (spawned grandchildren, atexit handlers) resolve.
    """
    import importlib.machinery
    import types

    with open(path, "rb") as handle:
        code = compile(handle.read(), path, "exec", dont_inherit=True)
    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__loader__ = importlib.machinery.SourceFileLoader("__main__", path)
    main.__builtins__ = __builtins__  # type: ignore[attr-defined]
    sys.modules["__main__"] = main
    exec(code, main.__dict__)


def load_function(target: FunctionTarget) -> Any:
    """Import ``module:function`` or ``file.py:function`` (a file is imported under its stem)."""
    if target.path is not None:
        directory = os.path.dirname(target.path)
        if directory not in sys.path:
            sys.path.insert(0, directory)
        name = os.path.splitext(os.path.basename(target.path))[0]
        module = sys.modules.get(name)
        if module is None or getattr(module, "__file__", None) != target.path:
            spec = importlib.util.spec_from_file_location(name, target.path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {target.path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
    else:
        module = importlib.import_module(str(target.module))
    obj: Any = module
    for part in target.function.split("."):
        obj = getattr(obj, part)
    return obj


def _apply_startup_environment(payload: WorkerPayload) -> None:
    """What an interpreter would have read at start, applied after the fork."""
    os.environ.update(payload.env)
    for entry in reversed(os.environ.get("PYTHONPATH", "").split(os.pathsep)):
        if entry and entry not in sys.path:
            sys.path.insert(1, entry)
    if os.environ.get("PYTHONUNBUFFERED"):
        for stream in (sys.stdout, sys.stderr):
            reconfigure = getattr(stream, "reconfigure", None)
            if reconfigure is not None:
                reconfigure(line_buffering=True)
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0 and "torch" in sys.modules:
        import torch

        if torch.get_num_threads() != int(threads):
            torch.set_num_threads(int(threads))


# What a fresh ``python`` sets at start; every other signal has its default action.
_PYTHON_STARTUP_HANDLERS: dict[str, Callable[[int, FrameType | None], Any] | signal.Handlers] = {
    "SIGINT": signal.default_int_handler, "SIGPIPE": signal.SIG_IGN, "SIGXFSZ": signal.SIG_IGN}


def fresh_signal_dispositions() -> None:
    """Signal handlers and mask as a ``python`` started from a shell has them, whatever this process inherited.

    A launcher started under ``nohup`` or with ``cmd &`` ignores SIGHUP or SIGINT, and its workers would too
    (Ctrl-C could never raise KeyboardInterrupt in them); a forked worker has elastic's handlers. Handlers
    installed outside Python (``getsignal`` gives None: faulthandler's, a C library's) are left alone;
    the launcher's own (faulthandler on SIGUSR1) are installed after this.
    """
    startup = {getattr(signal, name): handler for name, handler in _PYTHON_STARTUP_HANDLERS.items()
               if hasattr(signal, name)}
    for number in signal.valid_signals():
        try:
            current = signal.getsignal(number)
        except (OSError, ValueError):
            continue
        wanted = startup.get(number, signal.SIG_DFL)
        if current is not None and current != wanted:
            with contextlib.suppress(OSError, ValueError):  # SIGKILL, SIGSTOP
                signal.signal(number, wanted)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_SETMASK, ())


def _own_process_group() -> None:
    """Lead a process group, so that stopping this rank also stops its children (DataLoader workers)."""
    if hasattr(os, "setpgid"):
        with contextlib.suppress(OSError):
            os.setpgid(0, 0)


def _keep_launch_fds_from_exec() -> None:
    """What this rank execs (``os.system("daemon &")``, ``os.execv``) does not inherit the fds multiprocessing gave it.

    Under spawn, one is the write end of the pipe whose closing tells the agent that
    this rank exited: a daemon the rank left holding it would keep the job waiting
    for a rank long gone. This process keeps them all. Linux (/proc) and macOS (/dev/fd).
    """
    folder = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
    try:
        fds = [int(name) for name in os.listdir(folder)]
    except (OSError, ValueError):
        return
    for fd in fds:
        with contextlib.suppress(OSError):  # the listing's own fd, closed by now
            if fd > 2 and os.get_inheritable(fd):
                os.set_inheritable(fd, False)


def _connect_output(folder: str) -> None:
    """Send fds 1 and 2 into the launcher's FIFOs for this rank, line-buffered even when piped.

    Each FIFO is removed once open: a FIFO left in the rank's folder would block whoever
    reads it (``cat``) and break copies of the folder (``shutil.copytree``).
    """
    for name, fd in (("stdout", 1), ("stderr", 2)):
        path = os.path.join(folder, PIPE_NAMES[name])
        if not os.path.exists(path):
            return  # no FIFOs (Windows): the console directly
        stream = getattr(sys, name)
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
        target = os.open(path, os.O_WRONLY)
        with contextlib.suppress(FileNotFoundError):  # the launcher removed it: the attempt is being stopped
            os.unlink(path)
        os.dup2(target, fd)
        os.close(target)
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(line_buffering=True)


def _enable_stack_dumps(stacks_file: str | None) -> None:
    """Python stacks of every thread on a crash (stderr), and on SIGUSR1 (the hang watchdog asks with it).

    With the watchdog on, SIGUSR1's go to ``stacks_file`` (``launcher.protocol``), which the launcher reads
    to tell a rank waiting in a collective from the one it waits for, and shows; else to stderr, or nowhere
    in a SLURM job (SIGUSR1 ignored: there it is SLURM's preemption notice).
    """
    import faulthandler

    faulthandler.enable(file=sys.stderr, all_threads=True)
    if not hasattr(signal, "SIGUSR1"):
        return
    if stacks_file is None and "SLURM_JOB_ID" in os.environ:
        # SLURM passes its preemption notice (SIGUSR1) to every process of the step: ignored here, and in
        # this rank's children (DataLoader workers, forked or spawned), it is the launcher's alone to act on.
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        return
    target: Any = sys.stderr
    if stacks_file is not None:
        with contextlib.suppress(OSError):
            target = open(stacks_file, "ab", buffering=0)  # noqa: SIM115  # kept open for faulthandler
            target.write(main_thread_header(threading.get_ident()).encode())
    faulthandler.register(signal.SIGUSR1, file=target, all_threads=True)


def _die_with_parent() -> None:
    """Linux: SIGKILL this worker when the process that forked it exits; elsewhere a watchdog thread."""
    if not sys.platform.startswith("linux"):
        import psutil

        from launcher.runtime.threads import BackgroundLoop

        parent = os.getppid()

        def check_parent() -> None:
            if os.getppid() != parent or not psutil.pid_exists(parent):  # Windows keeps a stale ppid
                os._exit(1)

        BackgroundLoop("launcher-parent-watchdog", check_parent, interval=1.0).start()
        return
    if not signal_when_parent_dies(int(signal.SIGKILL)):  # pragma: no cover - no libc prctl
        return
    if os.getppid() == 1:  # the parent is already gone
        os._exit(1)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
