"""``launcher.compat.mp`` on the Python that runs this script: its probe, the real mechanism, the fallbacks.

A plain script (``python tests/unit/compat/mp_checks.py`` with the repository on
PYTHONPATH), standard library only: no torch, PyYAML or pytest, so that every
CPython the machine has can run it (``test_mp.py`` runs it on 3.10-3.13). It
prints one line per check and exits 1 if any failed.

- probe: ``mp.probe()`` finds nothing missing on a supported Python.
- the resource tracker: ``start_resource_tracker()`` starts it leading a process group of its own.
- mechanism: with real processes, as the launcher uses them. A forkserver starts
  (its preload imports this script as tests.unit.compat.mp_checks, which registers an atexit handler there, as
  torch does in the launcher's server); a child forked from it
  calls ``use_parent_server()`` and gets a grandchild from that same server (no
  second server), releases the server's liveness pipe, drops the inherited
  atexit handlers and runs its own exactly once (``run_atexit``). Then
  ``stop_forkserver()`` kills the server and ``forkserver_pid()`` forgets it.
- sibling pipes: a child forked (fork start method) inside ``sibling_pipes_closed()`` holds
  neither pipe multiprocessing keeps for a sibling forked before it; one forked outside holds both.
- fallbacks: with an internal faked away (or a 3.14-style authenticating
  server faked in), the probe names it, the accessors refuse or do nothing, and
  ``build_plan`` takes the documented fallback with the reason in its notes.
  Everything is restored afterwards (checked).
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import signal
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from multiprocessing import forkserver, process, resource_tracker, util
from multiprocessing.connection import Connection
from typing import Any

from launcher.compat import mp

SUPPORTED = ((3, 10), (3, 11), (3, 12), (3, 13))
WAIT = 60.0  # seconds for any one process step: far more than needed, so a hang fails instead of stalling
LOG_VARIABLE = "LAUNCHER_MP_CHECKS_LOG"  # where atexit handlers write: set before the server starts

# -- what runs in the forkserver and its children ------------------------------------------------

# The server preloads this file as a module of the repository (on PYTHONPATH, which the server inherits).
# Not as ``__main__``, nor by its bare name: on 3.10-3.13 the server is sent ``main_path``, a key that
# ``spawn.get_preparation_data`` never sets, and ``sys_path``, which its ``main`` ignores.
MODULE = "tests.unit.compat.mp_checks"
INHERITED: list[int] = []  # pids of the processes that registered the "inherited" handler at import


def _log(text: str) -> None:
    with open(os.environ[LOG_VARIABLE], "a") as log:
        log.write(f"{text} {os.getpid()}\n")


if __name__ == MODULE and os.environ.get(LOG_VARIABLE):
    # Imported by the server's preload: a handler that every process the server forks inherits, as
    # the handlers torch registers in the launcher's server.
    atexit.register(_log, "inherited")
    INHERITED.append(os.getpid())


def _grandchild(channel: Connection) -> None:
    channel.send({"pid": os.getpid(), "ppid": os.getppid()})
    channel.close()


def _children_of(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (Linux: /proc; elsewhere an empty list)."""
    found = []
    with contextlib.suppress(OSError):
        entries = os.listdir("/proc")
        for entry in entries:
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _agent_like(channel: Connection) -> None:
    """A child of the forkserver, doing what the launcher's agent and its workers do; reports what it saw."""
    report: dict[str, Any] = {"pid": os.getpid(), "ppid": os.getppid()}
    try:
        server: Any = forkserver._forkserver
        preloaded = sys.modules.get(MODULE)
        report["registered_by"] = preloaded.INHERITED if preloaded is not None else None
        report["state_before"] = (server._forkserver_address is not None, server._forkserver_alive_fd is not None,
                                  server._forkserver_pid)
        mp.use_parent_server()
        report["parent_server"] = (mp.parent_server_pid(), os.getppid())
        context = multiprocessing.get_context("forkserver")
        ours, theirs = context.Pipe()
        grandchild = context.Process(target=_grandchild, args=(theirs,))
        grandchild.start()
        theirs.close()
        report["grandchild"] = ours.recv() if ours.poll(WAIT) else None
        grandchild.join(WAIT)
        report["grandchild_exitcode"] = grandchild.exitcode
        report["pid_after"] = server._forkserver_pid
        report["own_children"] = _children_of(os.getpid())  # a second server would be one

        alive_fd = server._forkserver_alive_fd
        mp.release_server_pipe()
        report["pipe_released"] = (server._forkserver_alive_fd, _is_open(alive_fd))

        mp.clear_inherited_atexit()
        atexit.register(_log, "own")
        mp.run_atexit()
        mp.run_atexit()  # handlers run once: the first call cleared them
    except BaseException:
        report["error"] = traceback.format_exc()
    channel.send(report)
    channel.close()
    # the forkserver ends this process in os._exit: no atexit handler runs after this


def fd_identity(fd: int) -> tuple[int, int] | None:
    """What ``fd`` is open on (device, inode), or None: a number closed may be reused for another file."""
    try:
        stat = os.fstat(fd)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def _exit_with_held_count(pipes: dict[int, tuple[int, int] | None]) -> None:
    """A forked child: exits with how many of ``pipes`` (a sibling's, by fd and identity) it still holds."""
    os._exit(sum(fd_identity(fd) == identity for fd, identity in pipes.items()))


# -- the checks ------------------------------------------------------------------------------------


class CheckFailed(AssertionError):
    pass


def expect(condition: object, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def check_probe() -> None:
    problems = mp.probe()
    missing = {name: value for name, value in vars(problems).items() if value is not None}
    expect(not missing, f"mp.probe() reports missing internals on this Python: {missing}")
    expect(problems.notes() == (), f"no notes expected, got {problems.notes()}")


def check_tracker_in_own_group() -> None:
    mp.start_resource_tracker()
    pid = resource_tracker._resource_tracker._pid  # type: ignore[attr-defined]
    expect(pid is not None and os.getpgid(pid) == pid, f"the tracker ({pid}) should lead a process group")
    expect(os.getpgid(pid) != os.getpgid(0), "the tracker should not be in this process's group")


def check_tracker_group_missing() -> None:
    with faked(util, "spawnv_passfds"):
        only(mp.probe(), "tracker_group")


def check_use_parent_server_outside_a_server_child() -> None:
    expect(mp.forkserver_pid() is None, "no forkserver should run yet")
    try:
        mp.use_parent_server()
    except RuntimeError as error:
        expect("not forked" in str(error), f"unexpected message: {error}")
    else:
        raise CheckFailed("use_parent_server() in a process no forkserver forked should raise RuntimeError")


def check_mechanism(log_path: str) -> None:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([MODULE])
    ours, theirs = context.Pipe()
    child = context.Process(target=_agent_like, args=(theirs,))
    try:
        child.start()
        theirs.close()
        server_pid = mp.forkserver_pid()
        expect(server_pid is not None, "forkserver_pid() is None after the forkserver started a child")
        expect(ours.poll(WAIT), f"the forkserver child sent nothing within {WAIT:.0f} s")
        report = ours.recv()
        child.join(WAIT)
        expect(child.exitcode == 0, f"the forkserver child exited with {child.exitcode}")
        expect("error" not in report, f"the forkserver child failed:\n{report.get('error')}")
        expect(report["ppid"] == server_pid, f"the child's parent is {report['ppid']}, not the server {server_pid}")
        expect(report["state_before"] == (True, True, None),
               f"a forkserver child should have the server's address and pipe but no pid: {report['state_before']}")
        print(f"ok    forkserver child {report['pid']} of server {server_pid}: address and pipe, no pid")

        expect(report["parent_server"] == (server_pid, server_pid),
               f"parent_server_pid() and the parent should be the server {server_pid}: {report['parent_server']}")
        grand = report["grandchild"]
        expect(grand is not None, "the grandchild sent nothing back")
        expect(report["grandchild_exitcode"] == 0, f"the grandchild exited with {report['grandchild_exitcode']}")
        expect(grand["ppid"] == server_pid,
               f"the grandchild's parent is {grand['ppid']}, not the launcher's server {server_pid}")
        expect(report["pid_after"] is None, f"the child started a forkserver of its own (pid {report['pid_after']})")
        expect(report["own_children"] == [], f"the child has children of its own: {report['own_children']}")
        print(f"ok    use_parent_server: grandchild {grand['pid']} came from the same server, no second server")

        expect(report["pipe_released"] == (None, False),
               f"release_server_pipe: (fd attribute, fd still open) = {report['pipe_released']}")
        print("ok    release_server_pipe: the liveness pipe is closed and forgotten")

        with open(log_path) as log:
            lines = [line.split() for line in log]
        expect(report["registered_by"] == [server_pid],
               f"precondition: the server's preload should have registered an atexit handler in the server "
               f"{server_pid}, not in {report['registered_by']}")
        in_child = [what for what, pid in lines if int(pid) == report["pid"]]
        expect(in_child == ["own"], f"atexit handlers that ran in the child: {in_child} (expected ['own'])")
        print("ok    clear_inherited_atexit + run_atexit: the inherited handler never ran, the child's own once")
    finally:
        if child.is_alive():
            child.kill()
            child.join(WAIT)
        ours.close()
        server_pid = mp.forkserver_pid()
        mp.stop_forkserver()
    if server_pid is None:
        raise CheckFailed("no forkserver to stop")
    expect(mp.forkserver_pid() is None, f"forkserver_pid() is {mp.forkserver_pid()} after stop_forkserver()")
    try:
        os.kill(server_pid, 0)
    except ProcessLookupError:
        pass
    else:
        raise CheckFailed(f"the forkserver {server_pid} is still there after stop_forkserver()")
    with open(log_path) as log:
        ran_in_server = [line for line in log if line.split()[1] == str(server_pid)]
    expect(not ran_in_server, f"the server ran atexit handlers, so it was not killed: {ran_in_server}")
    print(f"ok    stop_forkserver: server {server_pid} is gone, forkserver_pid() is None")


_ABSENT = object()


@contextlib.contextmanager
def faked(owner: Any, name: str, value: Any = _ABSENT) -> Iterator[None]:
    """``owner.name`` set to ``value`` (or removed) for the block; the probe's cache cleared around it."""
    saved = vars(owner).get(name, _ABSENT)
    if value is _ABSENT:
        if saved is not _ABSENT:
            delattr(owner, name)
    else:
        setattr(owner, name, value)
    mp.probe.cache_clear()
    try:
        yield
    finally:
        if saved is _ABSENT:
            if name in vars(owner):
                delattr(owner, name)
        else:
            setattr(owner, name, saved)
        mp.probe.cache_clear()


def plan(start_method: str = "auto") -> Any:
    from launcher.clusters import detect
    from launcher.hostinfo import HostFacts
    from launcher.plan.build import build_plan
    from launcher.schema import JobConfig, WorldSettings
    from launcher.targets import ScriptTarget

    facts = HostFacts(usable_cpus=8, installed_gpus=0, platform="linux", environ={}, hostname="host0",
                      run_id="run123", cwd="/work")
    config = JobConfig(world=WorldSettings(nprocs=2, start_method=start_method))  # type: ignore[arg-type]
    return build_plan(config, ScriptTarget("/work/train.py", "train.py"), (), detect({}), facts)


def only(problems: mp.Problems, *names: str) -> None:
    reported = sorted(name for name, value in vars(problems).items() if value is not None)
    expect(reported == sorted(names), f"the probe reports {reported}, expected {sorted(names)}: {problems}")


def check_plan_baseline() -> None:
    mp.probe.cache_clear()
    built = plan()
    expect((built.start.method, built.start.preload_torch) == ("forkserver", True),
           f"baseline: expected a torch-preloaded forkserver, got {built.start}")
    expect(built.agent.in_server, f"baseline: the agent should fork from the server: {built.agent}")


def check_authenticated_server() -> None:
    server = forkserver._forkserver
    with faked(server, "_forkserver_authkey", b"3.14-style key"):
        problems = mp.probe()
        only(problems, "agent_in_server")
        reason = problems.agent_in_server
        assert reason is not None
        expect("authenticates" in reason, f"the reason does not name the authentication: {reason}")
        try:
            mp.use_parent_server()
        except RuntimeError as error:
            expect("authenticates" in str(error), f"unexpected message: {error}")
        else:
            raise CheckFailed("use_parent_server() should raise RuntimeError with an authenticating server")
        built = plan()
        expect(built.start.method == "forkserver", f"the workers should still fork: {built.start}")
        expect(not built.agent.in_server and built.agent.reason == reason,
               f"the agent should run in the launcher process, because {reason!r}: {built.agent}")
        expect(f"{reason}: the agent runs in the launcher process" in built.notes, f"plan notes: {built.notes}")


def check_atexit_missing() -> None:
    for name in ("_clear", "_run_exitfuncs"):
        with faked(atexit, name):
            problems = mp.probe()
            only(problems, "forked_workers")
            reason = problems.forked_workers
            expect(reason == f"atexit has no {name}", f"the reason does not name atexit.{name}: {reason}")
            for requested in ("auto", "forkserver", "fork", "spawn"):
                built = plan(requested)
                expect(built.start.method == "spawn", f"{requested}: workers should be spawned: {built.start}")
                expect(not built.agent.in_server, f"{requested}: no server to fork the agent from: {built.agent}")
            expect(f"{reason}: workers are spawned" in plan().notes, f"plan notes: {plan().notes}")


def check_server_internals_missing() -> None:
    server = forkserver._forkserver
    with faked(server, "_forkserver_alive_fd"):
        problems = mp.probe()
        only(problems, "agent_in_server", "server_pipe", "server_control")
        expect("_forkserver_alive_fd" in str(problems.server_pipe), f"reason: {problems.server_pipe}")
        expect(mp.forkserver_pid() is None, "forkserver_pid() should be None without the server's internals")
        mp.release_server_pipe()  # does nothing
        mp.stop_forkserver()  # does nothing
        expect(mp.run_exit_function() is False, "run_exit_function() should refuse without the server's internals")
        try:
            mp.use_parent_server()
        except RuntimeError:
            pass
        else:
            raise CheckFailed("use_parent_server() should raise RuntimeError without the server's internals")
        built = plan()
        expect(built.start.method == "forkserver" and not built.agent.in_server, f"{built.start} {built.agent}")
        for line in ("the agent runs in the launcher process", "only the reaper stops workers whose launcher died",
                     "the launcher exits through the interpreter's normal shutdown"):
            expect(any(note.endswith(line) for note in built.notes), f"no note ending {line!r}: {built.notes}")
    with faked(util, "_exit_function"):
        problems = mp.probe()
        only(problems, "server_control")
        expect(problems.server_control == "multiprocessing.util has no _exit_function", f"{problems}")
        expect(mp.run_exit_function() is False, "run_exit_function() should refuse without util._exit_function")
        expect(plan().agent.in_server, "the agent still forks from the server")


def check_temp_dir_missing() -> None:
    with faked(process.current_process(), "_config", None):
        only(mp.probe(), "temp_dir")
        expect(mp.use_temp_dir("/nowhere") is False, "use_temp_dir() should refuse")
        expect(mp.temp_dir_chosen(), "temp_dir_chosen() should say yes: nothing to choose")
    expect(process.current_process()._config.get("tempdir") != "/nowhere",  # type: ignore[attr-defined]
           "use_temp_dir() changed the temp dir although it refused")


def check_restored() -> None:
    check_probe()
    check_plan_baseline()
    expect("_forkserver_authkey" not in vars(forkserver._forkserver),
           "the faked key is still there")


def check_sibling_pipes() -> None:
    context = multiprocessing.get_context("fork")
    release = context.Event()
    first = context.Process(target=release.wait, args=(WAIT,))
    first.start()
    try:
        finalizer: Any = first._popen.finalizer  # type: ignore[attr-defined]
        pipes = {fd: fd_identity(fd) for fd in finalizer._args}
        expect(len(pipes) == 2 and first.sentinel in pipes, f"the first child's pipes: {pipes}")
        held = {}
        for inside in (True, False):
            with mp.sibling_pipes_closed() if inside else contextlib.nullcontext():
                second = context.Process(target=_exit_with_held_count, args=(pipes,))
                second.start()
            second.join(WAIT)
            held[inside] = second.exitcode
        expect(held == {True: 0, False: 2}, f"sibling pipes held (inside the block: 0, outside: 2): {held}")
        expect(all(fd_identity(fd) == identity for fd, identity in pipes.items()),
               "this process lost its own pipes to the first child")
    finally:
        release.set()
        first.join(WAIT)


def check_sibling_pipes_missing() -> None:
    with faked(process, "_children"):
        only(mp.probe(), "sibling_pipes")
        with mp.sibling_pipes_closed():  # does nothing
            pass


def check_exit_function() -> None:
    ran: list[str] = []
    util.Finalize(None, ran.append, args=("finalizer",), exitpriority=1)
    expect(mp.run_exit_function() is True, "run_exit_function() should run multiprocessing's exit function")
    expect(ran == ["finalizer"], f"multiprocessing's finalizers did not run: {ran}")


def main() -> int:
    version = ".".join(map(str, sys.version_info[:3]))
    print(f"python {version} ({sys.executable})")
    if sys.version_info[:2] not in SUPPORTED:
        print(f"FAIL  python {version}: these checks expect CPython 3.10-3.13 (an older or newer one has its own "
              "expected probe results: add them here)")
        return 1
    if not hasattr(signal, "SIGKILL") or "forkserver" not in multiprocessing.get_all_start_methods():
        print("FAIL  this platform has no forkserver: the launcher only uses compat.mp's forkserver part on POSIX")
        return 1
    folder = tempfile.mkdtemp(prefix="mp-checks-")
    log_path = os.path.join(folder, "atexit.log")
    open(log_path, "w").close()
    os.environ[LOG_VARIABLE] = log_path
    checks: list[tuple[str, Callable[[], None]]] = [
        ("probe: nothing missing", check_probe),
        ("the resource tracker starts in a process group of its own", check_tracker_in_own_group),
        ("use_parent_server refuses outside a forkserver child", check_use_parent_server_outside_a_server_child),
        ("mechanism", lambda: check_mechanism(log_path)),
        ("a child forked while workers start holds no sibling's pipes", check_sibling_pipes),
        ("plan baseline: agent forked from the server", check_plan_baseline),
        ("fallback: authenticating server (3.14) puts the agent in the launcher", check_authenticated_server),
        ("fallback: no atexit._clear/_run_exitfuncs spawns the workers", check_atexit_missing),
        ("fallback: missing server internals", check_server_internals_missing),
        ("fallback: no multiprocessing temp dir config", check_temp_dir_missing),
        ("fallback: no util.spawnv_passfds to start the tracker with", check_tracker_group_missing),
        ("fallback: no process._children: siblings' pipes stay", check_sibling_pipes_missing),
        ("everything restored", check_restored),
        ("run_exit_function runs multiprocessing's finalizers", check_exit_function),
    ]
    failed = 0
    try:
        for name, check in checks:
            try:
                check()
            except Exception as error:
                failed += 1
                detail = str(error) if isinstance(error, CheckFailed) else traceback.format_exc()
                print(f"FAIL  {name}: {detail}")
            else:
                print(f"ok    {name}")
    finally:
        with contextlib.suppress(OSError):
            os.remove(log_path)
            os.rmdir(folder)
    print(f"{len(checks) - failed}/{len(checks)} checks passed on python {version}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
