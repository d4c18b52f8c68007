"""One rank of a ``distributed`` test: a child of the rank server that runs the test body and reports.

Forked by the server (``launcher.testing.server``), it sets itself up as
torchrun would have (the rank environment, one OpenMP thread unless asked
otherwise), captures its output in its folder, imports the test module as
pytest did (same import mode and root, asserts rewritten), joins a process group
through ``launcher.runtime.context.init`` (so ``launcher.init()`` in the code
under test returns the same context), calls the test function with the fixture
values the pytest process sent, and writes its ``RankOutcome``. It ends with
``os._exit``: no interpreter shutdown, no inherited exit handlers.

Rank 0 serves the test's store on the socket the server bound (torchrun's agent
store: every rank, rank 0 too, is a client through ``TORCHELASTIC_USE_AGENT_STORE``),
and keeps it until every rank has finished its body.
"""

from __future__ import annotations

import contextlib
import datetime
import faulthandler
import io
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, NoReturn

from launcher.bootstrap import fresh_signal_dispositions
from launcher.platforms import signal_when_parent_dies
from launcher.protocol import STACKS_FILE, main_thread_header
from launcher.supervise.stacks import raised_in_collective
from launcher.testing.messages import (
    OUTCOME_FILE,
    STDERR_FILE,
    STDOUT_FILE,
    RankContext,
    RankOutcome,
    RunRequest,
)
from launcher.testing.rewrite import AssertRewriter, explain_comparisons

MASTER_ADDR = "127.0.0.1"
DONE_KEY = "launcher/testing/done/"  # + rank: set by each rank once its body returned or raised


def rank_folder(folder: str, rank: int) -> str:
    return os.path.join(folder, f"rank{rank}")


def run_rank(request: RunRequest, rank: int, group: int, listener: int, port: int, server: int,
             done: int) -> NoReturn:
    """The whole life of a forked rank; never returns. Its exit code goes to ``done`` just before it exits."""
    code = 70
    try:
        _become_rank(request, rank, group, listener, server)
        store = _serve_store(request, port, listener) if rank == 0 else None
        _set_environment(request, rank, port)
        outcome = _run_body(request, rank)
        _write_outcome(request, rank, outcome)
        code = 0 if outcome.outcome != "failed" else 1
        _flush()
        _finish_together(request, rank, port, store)
    except BaseException:  # the machinery failed: say so on the rank's stderr
        with contextlib.suppress(Exception):
            traceback.print_exc()
    finally:
        _flush()
        with contextlib.suppress(OSError):
            os.write(done, bytes([code]))
        os._exit(code)


def _become_rank(request: RunRequest, rank: int, group: int, listener: int, server: int) -> None:
    with contextlib.suppress(OSError):
        os.setpgid(0, group)  # the server does it too: whichever runs first
    signal_when_parent_dies(int(signal.SIGKILL))
    if os.getppid() != server:
        os._exit(1)
    fresh_signal_dispositions()
    if rank != 0:
        os.close(listener)
    folder = rank_folder(request.folder, rank)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    for fd, name in ((1, STDOUT_FILE), (2, STDERR_FILE)):
        target = os.open(os.path.join(folder, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    faulthandler.enable(file=sys.stderr, all_threads=True)
    stacks = open(os.path.join(folder, STACKS_FILE), "ab", buffering=0)  # noqa: SIM115  # kept for faulthandler
    stacks.write(main_thread_header(threading.get_ident()).encode())
    faulthandler.register(signal.SIGUSR1, file=stacks, all_threads=True)


def _serve_store(request: RunRequest, port: int, listener: int) -> Any:
    import torch.distributed as dist

    return dist.TCPStore(MASTER_ADDR, port, request.nprocs, True,  # type: ignore[attr-defined]
                         datetime.timedelta(seconds=request.timeout), wait_for_workers=False,
                         master_listen_fd=listener)


def _set_environment(request: RunRequest, rank: int, port: int) -> None:
    """torchrun's rank environment on top of the pytest process's (as it was when the test ran), its folder."""
    os.chdir(request.cwd)
    os.environ.clear()
    os.environ.update(request.environ)
    world = str(request.nprocs)
    os.environ.update({
        "RANK": str(rank), "LOCAL_RANK": str(rank), "GROUP_RANK": "0", "ROLE_RANK": str(rank),
        "WORLD_SIZE": world, "LOCAL_WORLD_SIZE": world, "ROLE_WORLD_SIZE": world, "GROUP_WORLD_SIZE": "1",
        "ROLE_NAME": "default", "MASTER_ADDR": MASTER_ADDR, "MASTER_PORT": str(port),
        "TORCHELASTIC_USE_AGENT_STORE": "True", "TORCHELASTIC_RESTART_COUNT": "0",
        "TORCHELASTIC_MAX_RESTARTS": "0", "TORCHELASTIC_RUN_ID": os.path.basename(request.folder),
    })
    if "OMP_NUM_THREADS" not in os.environ and request.nprocs > 1:  # as torchrun does
        os.environ["OMP_NUM_THREADS"] = "1"
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:
        import torch

        torch.set_num_threads(int(threads))
    sys.path[:] = request.sys_path


def _run_body(request: RunRequest, rank: int) -> RankOutcome:
    from _pytest.outcomes import Failed, Skipped, XFailed

    function: Callable[..., Any] | None = None
    try:
        function = _load_test(request)
        arguments = pickle.loads(request.arguments)
        from launcher.runtime.context import init

        ctx = init(request.backend)
        arguments = {name: ctx if isinstance(value, RankContext) else value for name, value in arguments.items()}
        value = function(**arguments)
    except XFailed as reason:
        return RankOutcome("xfailed", message=str(reason.msg))
    except Skipped as reason:
        return RankOutcome("skipped", message=str(reason.msg))
    except Failed as failure:
        when = time.time()
        if not failure.pytrace:
            return RankOutcome("failed", message=str(failure.msg), report=str(failure.msg), raised_at=when)
        return _failure(failure, function, request, when)
    except BaseException as error:  # every failure is the rank's outcome
        return _failure(error, function, request, time.time())
    if value is None:
        return RankOutcome("passed")
    try:
        return RankOutcome("passed", value=pickle.dumps(value))
    except Exception as error:
        message = f"its return value cannot be sent to the pytest process: {type(error).__name__}: {error}"
        return RankOutcome("failed", message=message, report=message, raised_at=time.time())


def _load_test(request: RunRequest) -> Callable[..., Any]:
    from _pytest.pathlib import ImportMode, import_path

    if request.rewrite is not None:
        sys.meta_path.insert(0, AssertRewriter(request.rewrite, request.module_path))
        explain_comparisons(request.verbosity, request.diff_style)
    module = sys.modules.get(request.module_name)
    if module is None or getattr(module, "__file__", None) != request.module_path:
        from pathlib import Path

        module = import_path(request.module_path, mode=ImportMode(request.import_mode), root=Path(request.rootpath),
                             consider_namespace_packages=request.consider_namespace_packages)
    owner: Any = module
    if request.class_name is not None:
        for name in request.class_name.split("."):
            owner = getattr(owner, name)
        owner = owner()
    function: Callable[..., Any] = getattr(owner, request.function)
    return function


def _failure(error: BaseException, function: Callable[..., Any] | None, request: RunRequest,
             when: float) -> RankOutcome:
    """The failure as pytest would show it, cut to the test function's frames as pytest cuts them."""
    plain = "".join(traceback.format_exception(error))
    message = "".join(traceback.format_exception_only(error)).strip().partition("\n")[0] or type(error).__name__
    try:
        report = _pytest_report(error, function, request)
    except Exception:  # another pytest's internals: the plain traceback
        report = plain
    return RankOutcome("failed", message=message, report=report, raised_at=when,
                       in_collective=raised_in_collective(plain))


def _pytest_report(error: BaseException, function: Callable[..., Any] | None, request: RunRequest) -> str:
    from _pytest._code import Code, ExceptionInfo
    from _pytest.python import filter_traceback  # type: ignore[attr-defined]

    info = ExceptionInfo.from_exception(error)
    if function is not None and not request.fulltrace:
        code = Code.from_function(function)
        tb = info.traceback
        cut = tb.cut(path=code.path, firstlineno=code.firstlineno)
        if cut == tb:
            cut = tb.cut(path=code.path)
            if cut == tb:
                cut = tb.filter(filter_traceback) or tb
        info.traceback = cut.filter(info)
    from _pytest._io import TerminalWriter

    style = "long" if request.tbstyle == "auto" else request.tbstyle
    text = io.StringIO()
    writer = TerminalWriter(text)
    writer.hasmarkup = False
    info.getrepr(style=style, showlocals=request.showlocals, tbfilter=False).toterminal(writer)  # type: ignore[arg-type]
    return text.getvalue()


def _write_outcome(request: RunRequest, rank: int, outcome: RankOutcome) -> None:
    path = os.path.join(rank_folder(request.folder, rank), OUTCOME_FILE)
    with open(path + ".partial", "wb") as handle:
        pickle.dump(outcome, handle)
    os.replace(path + ".partial", path)


def _finish_together(request: RunRequest, rank: int, port: int, store: Any) -> None:
    """Rank 0 keeps the store until every rank is done with it (a rank may still be joining the group)."""
    if request.nprocs == 1:
        return
    import torch.distributed as dist

    timeout = datetime.timedelta(seconds=request.timeout)
    if store is None:
        with contextlib.suppress(Exception):  # rank 0 is gone: nothing to wait for
            client = _group_store() or dist.TCPStore(MASTER_ADDR, port, request.nprocs, False,  # type: ignore[attr-defined]
                                                     timeout)
            client.set(f"{DONE_KEY}{rank}", "1")
        return
    with contextlib.suppress(Exception):  # a rank died: the server stops this one
        store.wait([f"{DONE_KEY}{peer}" for peer in range(1, request.nprocs)], timeout)


def _group_store() -> Any:
    """The connection to the test's store that the default process group holds, if it is still there."""
    import torch.distributed as dist

    try:
        store = dist.distributed_c10d._get_default_store()
    except Exception:  # no group (the body destroyed it), or another torch
        return None
    while hasattr(store, "underlying_store"):  # the group's prefix: the done keys are the store's own
        store = store.underlying_store
    return store


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
