"""A rendezvous wait that a stop signal interrupts, and its failures as one line."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator

import pytest
from torch.distributed import DistStoreError  # type: ignore[attr-defined]
from torch.distributed.elastic.rendezvous import RendezvousConnectionError, RendezvousGracefulExitError

from launcher.errors import RendezvousFailed
from launcher.interruptible import call_interruptibly
from launcher.plan.model import RendezvousPlan
from launcher.supervise.rendezvous import guarded, join_timeout

pytestmark = pytest.mark.timeout(30)
C10D = RendezvousPlan("c10d", "10.1.2.3", 29400, "<chosen at launch>", "none", 2, 2, 0, {"join_timeout": "7"})


class Stopped(Exception):
    pass


@pytest.fixture
def released() -> Iterator[threading.Event]:
    """An event the blocked call waits on, set at the end so that its thread ends."""
    event = threading.Event()
    yield event
    event.set()


def test_the_value_and_the_error_of_the_call_come_back() -> None:
    assert call_interruptibly(lambda: 42, 5, "t") == 42
    with pytest.raises(KeyError):
        call_interruptibly(lambda: {}["x"], 5, "t")


def test_a_call_that_does_not_return_in_time_is_a_timeout(released: threading.Event) -> None:
    with pytest.raises(TimeoutError, match=r"no answer within 0\.1 s"):
        call_interruptibly(released.wait, 0.1, "t")


@pytest.mark.timeout(10)  # far shorter than the call's own timeout: the signal must end the wait
def test_a_signal_handler_interrupts_the_wait_at_once(released: threading.Event) -> None:
    def stop(_number: int, _frame: object) -> None:
        raise Stopped

    main = threading.main_thread().ident
    assert main is not None

    def blocked() -> None:
        while "join" not in _functions_on_stack(main):  # the caller waits for this thread
            released.wait(0.01)
        # To this thread, not the waiting one: the kernel may give a process's signal to any thread.
        signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)
        released.wait()

    previous = signal.signal(signal.SIGUSR1, stop)
    try:
        with pytest.raises(Stopped):
            call_interruptibly(blocked, 60, "t")
    finally:
        signal.signal(signal.SIGUSR1, previous)


def _functions_on_stack(thread_ident: int) -> set[str]:
    frame = sys._current_frames().get(thread_ident)
    names = set()
    while frame is not None:
        names.add(frame.f_code.co_name)
        frame = frame.f_back
    return names


def test_join_timeout_and_where_it_comes_from() -> None:
    assert join_timeout(C10D) == (7, "--rdzv-conf join_timeout=7")
    static = RendezvousPlan("static", "10.1.2.3", 29500, "10.1.2.3", "none", 2, 2, 1, {"timeout": "9"})
    assert join_timeout(static) == (9, "--rdzv-conf timeout=9")
    assert join_timeout(RendezvousPlan("c10d", "h", 1, "", "none", 1, 2, 0))[0] == 600


def test_a_failed_rendezvous_is_one_line_naming_the_endpoint_and_the_timeout() -> None:
    def refused() -> None:
        raise RendezvousConnectionError("The connection to the C10d store has failed. See inner exception for "
                                        "details.") from DistStoreError("connect() to 10.1.2.3:29400 timed out\nmore")

    with pytest.raises(RendezvousFailed) as failed:
        guarded(C10D, refused)
    message = failed.value.message
    assert "\n" not in message and "10.1.2.3:29400" in message and "7 s" in message
    assert "join_timeout=7" in message and message.endswith("connect() to 10.1.2.3:29400 timed out")


def test_nodes_that_never_meet_fail_after_the_join_timeout(released: threading.Event) -> None:
    quick = RendezvousPlan("static", "10.1.2.3", 29500, "10.1.2.3", "none", 2, 2, 1, {"join_timeout": "0"})
    with pytest.raises(RendezvousFailed, match=r"did not meet at 10\.1\.2\.3:29500 .* within 0 s"):
        guarded(quick, released.wait)


def test_a_store_that_does_not_answer_is_named_so(released: threading.Event) -> None:
    quick = RendezvousPlan("c10d", "10.1.2.3", 29400, "", "none", 2, 2, 0, {"join_timeout": "0"})
    with pytest.raises(RendezvousFailed, match=r"no rendezvous store answered at 10\.1\.2\.3:29400 .* within 0 s"):
        guarded(quick, released.wait, connecting=True)


def test_elastic_graceful_exit_is_left_to_elastic() -> None:
    def graceful() -> None:
        raise RendezvousGracefulExitError("done")

    with pytest.raises(RendezvousGracefulExitError):
        guarded(C10D, graceful)
