"""The pytest hooks of ``launcher.testing``: ``@pytest.mark.distributed`` and the ``ctx`` fixture.

A marked test is collected and set up as usual (fixtures and parameters are
resolved here, in the pytest process); only its call differs
(``pytest_pyfunc_call``): the fixture values are pickled to the rank server,
which forks the ranks; each runs the body in a process group of its own test
and reports; the verdict (``report.py``) becomes the test's outcome. The
ranks' output goes to this test's captured output, each line with ``[rankN]:``.
What the ranks return comes back pickled, for the mark's ``check=`` function to
assert on here (``{rank: value}``, once every rank passed): the test body stays
an ordinary test, and the assertion on all ranks' values is pytest's own.

The server is started when the collection reaches the first module whose
source mentions the mark, just before pytest imports it, so that the server's
torch import overlaps the module's (and the rest of the collection); it is
stopped as soon as the collection holds no marked test, and started at the first
marked test where the source did not tell. A run without such modules starts
nothing. Nothing here imports torch. Imported by pytest only (``launcher.testing``
registers it).
"""

from __future__ import annotations

import os
import pickle
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, NoReturn

import pytest

from launcher.testing.client import RankServer, ServerGone
from launcher.testing.mark import USAGE, Distributed, MarkError, read_mark
from launcher.testing.messages import RankContext, RunRequest
from launcher.testing.report import RankResult, read_results, verdict

MARK = "distributed"
_SERVER = pytest.StashKey[RankServer]()
_FOLDER = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARK}{USAGE.partition(MARK)[2]}: run the test body on every rank of "
                                       "a fresh process group (launcher.testing)")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> None:
    """Start the server before pytest imports the first module that seems to hold a marked test (the words
    ``mark.distributed`` in its source), so that the server's torch import overlaps the module's own."""
    config = parent.config
    if file_path.suffix != ".py" or _SERVER in config.stash or not _runs_tests(config):
        return
    try:
        source = file_path.read_bytes()
    except OSError:
        return
    if f"mark.{MARK}".encode() in source:
        _server(config).start()


def _runs_tests(config: pytest.Config) -> bool:
    """Not ``--collect-only``, nor pytest-xdist's controller (its workers run the tests)."""
    return not config.getoption("collectonly", False) and not config.pluginmanager.has_plugin("dsession")


def pytest_collection_finish(session: pytest.Session) -> None:
    """No marked test to run here: the server goes (it may still be importing torch)."""
    server = session.config.stash.get(_SERVER, None)
    if server is not None and not any(item.get_closest_marker(MARK) is not None for item in session.items):
        server.stop()


def pytest_unconfigure(config: pytest.Config) -> None:
    server = config.stash.get(_SERVER, None)
    if server is not None:
        server.stop()
    folder = config.stash.get(_FOLDER, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def ctx(request: pytest.FixtureRequest) -> RankContext:
    """The rank's ``launcher`` context (``launcher.init()``) in a ``@pytest.mark.distributed`` test."""
    if request.node.get_closest_marker(MARK) is None:
        pytest.fail("the ctx fixture exists in @pytest.mark.distributed tests only", pytrace=False)
    return RankContext()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    marker = pyfuncitem.get_closest_marker(MARK)
    if marker is None:
        return None
    spec = _read(marker)
    if isinstance(spec, str):
        pytest.fail(f"@pytest.mark.{MARK}: {spec}", pytrace=False)
    run_distributed(pyfuncitem, spec)
    return True


def _read(marker: pytest.Mark) -> Distributed | str:
    """The mark's arguments, or what is wrong with them."""
    try:
        return read_mark(marker.args, marker.kwargs)
    except (MarkError, TypeError) as error:
        return str(error)


def _server(config: pytest.Config) -> RankServer:
    server = config.stash.get(_SERVER, None)
    if server is None:
        folder = tempfile.mkdtemp(prefix="launcher-testing-")
        config.stash[_FOLDER] = folder
        server = config.stash[_SERVER] = RankServer(folder)
    return server


def run_distributed(item: pytest.Function, spec: Distributed) -> None:
    server = _server(item.config)
    server.start()  # also makes the session's folder again, if a server stopped before removed it
    nprocs = _ranks_or_skip(server, spec)
    folder = tempfile.mkdtemp(prefix="test-", dir=item.config.stash[_FOLDER])
    try:
        request = _request(item, spec, nprocs, folder)
        try:
            reply = server.run(request)
        except ServerGone as gone:
            pytest.fail(str(gone), pytrace=False)
        results = read_results(folder, reply)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    _echo_output(results)
    judged = verdict(results, reply, spec.timeout)
    if judged.outcome == "failed":
        pytest.fail(judged.text, pytrace=False)
    if judged.outcome == "skipped":
        _skip(judged.text)
    if judged.outcome == "xfailed":
        pytest.xfail(judged.text)
    _check_values(item, spec, results)


def _ranks_or_skip(server: RankServer, spec: Distributed) -> int:
    if spec.nprocs != "gpu" and spec.backend != "nccl":
        return int(spec.nprocs)
    gpus = server.gpus()
    if spec.nprocs == "gpu":
        if gpus == 0:
            _skip("nprocs='gpu' needs a CUDA GPU; none is visible")
        return gpus
    if gpus < int(spec.nprocs):
        _skip(f"backend='nccl' needs {spec.nprocs} CUDA GPUs (one per rank); {gpus} visible")
    return int(spec.nprocs)


def _skip(reason: str) -> NoReturn:
    """Skip, reported at the test (as a skip in the test body is), not at this line."""
    raise pytest.skip.Exception(reason, _use_item_location=True)


def _request(item: pytest.Function, spec: Distributed, nprocs: int, folder: str) -> RunRequest:
    config = item.config
    module = item.module
    assert module is not None and module.__file__ is not None
    return RunRequest(
        folder=folder, nprocs=nprocs, backend=spec.backend, timeout=float(spec.timeout),
        module_path=module.__file__, module_name=module.__name__,
        class_name=item.cls.__qualname__ if item.cls is not None else None, function=item.originalname,
        arguments=_pickled_arguments(item), environ=dict(os.environ), cwd=os.getcwd(), sys_path=list(sys.path),
        import_mode=str(config.getoption("importmode")), rootpath=str(config.rootpath),
        consider_namespace_packages=bool(config.getini("consider_namespace_packages")),
        rewrite=_rewritten_modules(config), verbosity=config.get_verbosity(pytest.Config.VERBOSITY_ASSERTIONS),
        diff_style=_ini(config, "assertion_text_diff_style"), tbstyle=str(config.getoption("tbstyle", "auto")),
        showlocals=bool(config.getoption("showlocals", False)), fulltrace=bool(config.getoption("fulltrace", False)),
    )


def _pickled_arguments(item: pytest.Function) -> bytes:
    """The fixture values and parameters the test takes, pickled; an unpicklable one fails the test, by name."""
    arguments = {name: item.funcargs[name] for name in item._fixtureinfo.argnames}
    parameters = item.callspec.params if hasattr(item, "callspec") else {}
    for name, value in arguments.items():
        problem = _pickling_problem(value)
        if problem:
            kind = "parameter" if name in parameters else "fixture"
            pytest.fail(f"{kind} {name!r} cannot be sent to the ranks ({problem}); "
                        "make its value picklable, or create the object inside the test", pytrace=False)
    return pickle.dumps(arguments)


def _pickling_problem(value: object) -> str | None:
    try:
        pickle.dumps(value)
    except Exception as error:  # pickling raises many kinds
        return f"{type(error).__name__}: {error}"
    return None


def _rewritten_modules(config: pytest.Config) -> frozenset[str] | None:
    """The modules whose asserts pytest rewrote here (the ranks rewrite the same); None with --assert=plain."""
    if config.getoption("assertmode") != "rewrite":
        return None
    try:
        from _pytest.assertion import assertstate_key  # type: ignore[attr-defined]

        hook = config.stash[assertstate_key].hook
        return frozenset(getattr(hook, "_rewritten_names", ()))
    except (ImportError, KeyError):
        return frozenset()


def _ini(config: pytest.Config, name: str) -> str:
    try:
        return str(config.getini(name))
    except ValueError:  # an older pytest without this option
        return ""


def _echo_output(results: list[RankResult]) -> None:
    """Each rank's output into this test's captured output, line by line with the rank's prefix."""
    for result in results:
        for text, stream in ((result.stdout, sys.stdout), (result.stderr, sys.stderr)):
            if text:
                stream.write("".join(f"[rank{result.rank}]: {line}\n" for line in text.splitlines()))


def _check_values(item: pytest.Function, spec: Distributed, results: list[RankResult]) -> None:
    values: dict[int, Any] = {r.rank: r.outcome.value for r in results if r.outcome is not None}
    if spec.check is not None:
        spec.check({rank: None if value is None else pickle.loads(value) for rank, value in values.items()})
    elif any(value is not None for value in values.values()):
        warnings.warn(pytest.PytestReturnNotNoneWarning(
            f"{item.nodeid}: a rank returned a value; pass check= to @pytest.mark.{MARK} to assert on the "
            "ranks' return values in the pytest process"), stacklevel=1)
