"""The hang watchdog's reading of faulthandler dumps: the main thread, a wait in torch.distributed, the rank to name."""

from __future__ import annotations

import sysconfig

import pytest

from launcher.protocol import main_thread_header, main_thread_ident
from launcher.supervise.stacks import holding_up, main_thread_stack, raised_in_collective, waits_for_others
from tests.unit.supervise.test_failures import GLOO_TRACEBACK

pytestmark = pytest.mark.timeout(30)

STDLIB = sysconfig.get_paths()["stdlib"]
TORCH = "/venv/lib/python3.11/site-packages/torch"
MACHINERY = (
    '  File "/src/launcher/bootstrap.py", line 165 in _run_target\n'
    f'  File "{TORCH}/distributed/elastic/multiprocessing/api.py", line 706 in _wrap\n'
    f'  File "{STDLIB}/multiprocessing/process.py", line 108 in run\n'
)
HEARTBEAT = (
    "Thread 0x00007f1ade3ff6c0 (most recent call first):\n"
    f'  File "{STDLIB}/threading.py", line 331 in wait\n'
    '  File "/src/launcher/runtime/threads.py", line 39 in _run\n'
    "\n"
)
IN_BARRIER = (
    f'  File "{TORCH}/distributed/distributed_c10d.py", line 5356 in barrier\n'
    f'  File "{TORCH}/distributed/c10d_logger.py", line 83 in wrapper\n'
    '  File "/work/train.py", line 79 in <module>\n'
)
IN_USER_LOOP = (
    '  File "/work/train.py", line 35 in hang_here\n'
    '  File "/work/train.py", line 72 in <module>\n'
)


def dump(main: str, current: bool = True, ident: int = 0x7F1AFCA72B80) -> str:
    """A dump as faulthandler writes it: the newest thread first, the main thread last."""
    label = "Current thread" if current else "Thread"
    return HEARTBEAT + f"{label} 0x{ident:016x} (most recent call first):\n" + main + MACHINERY


def test_the_stacks_file_names_its_main_thread() -> None:
    assert main_thread_ident(main_thread_header(0x7F1AFCA72B80)) == 0x7F1AFCA72B80
    assert main_thread_ident("Thread 0x00007f1ade3ff6c0 (most recent call first):") is None


def test_the_main_thread_is_the_one_named_else_the_last_dumped() -> None:
    text = dump(IN_USER_LOOP, current=False)  # the signal landed on another thread
    expected = tuple(line.rstrip() for line in (IN_USER_LOOP + MACHINERY).splitlines())
    assert main_thread_stack(text, 0x7F1AFCA72B80) == expected
    assert main_thread_stack(text, None) == expected  # no header: the oldest thread, dumped last
    main_first = f"Thread 0x00007f1afca72b80 (most recent call first):\n{IN_USER_LOOP}\n" + HEARTBEAT
    assert main_thread_stack(main_first, 0x7F1AFCA72B80)[0].endswith("in hang_here")  # named: wherever it is
    assert main_thread_stack(main_first, None)[-1].endswith("in _run")
    assert main_thread_stack("", None) == ()


@pytest.mark.parametrize(("main", "waiting"), [
    (IN_BARRIER, True),
    (f'  File "{TORCH}/nn/parallel/distributed.py", line 1600 in _sync_buffers\n'
     f'  File "{TORCH}/nn/modules/module.py", line 1750 in _call_impl\n'
     '  File "/work/train.py", line 50 in step\n', True),  # DDP's forward, synchronising buffers
    (f'  File "{STDLIB}/threading.py", line 331 in wait\n'
     f'  File "{TORCH}/distributed/elastic/utils/store.py", line 80 in barrier\n', True),  # a store wait, via stdlib
    (IN_USER_LOOP, False),
    (f'  File "{STDLIB}/threading.py", line 331 in wait\n'
     f'  File "{STDLIB}/queue.py", line 171 in get\n'
     '  File "/work/train.py", line 20 in next_batch\n', False),  # the user's own queue
    (f'  File "{TORCH}/utils/data/dataloader.py", line 1290 in _get_data\n'
     '  File "/work/train.py", line 61 in <module>\n', False),  # data loading: torch, but not a collective
    ('  File "/work/train.py", line 79 in <module>\n', False),  # a C call from user code: work.wait(), store.get()
    ("  <no Python frame>\n", False),
])
def test_a_rank_inside_torch_distributed_waits_for_the_others(main: str, waiting: bool) -> None:
    assert waits_for_others(main_thread_stack(dump(main), None)) is waiting


def test_the_rank_outside_a_collective_is_named_not_the_first_idle_one() -> None:
    stacks = {0: main_thread_stack(dump(IN_BARRIER), None), 1: main_thread_stack(dump(IN_USER_LOOP), None),
              2: main_thread_stack(dump(IN_BARRIER), None)}
    blame = holding_up(0, stacks, last_progress={0: 10.0, 1: 11.0, 2: 9.0})
    assert (blame.local_rank, blame.waiting) == (1, (0, 2))


def test_of_several_ranks_outside_a_collective_the_longest_idle_is_named() -> None:
    stacks = {0: main_thread_stack(dump(IN_BARRIER), None), 1: main_thread_stack(dump(IN_USER_LOOP), None),
              2: main_thread_stack(dump(IN_USER_LOOP), None)}
    assert holding_up(0, stacks, last_progress={0: 10.0, 1: 12.0, 2: 11.0}).local_rank == 2
    assert holding_up(1, stacks, last_progress={0: 10.0, 1: 12.0, 2: 11.0}).local_rank == 1  # idle and running


@pytest.mark.parametrize("stacks", [
    {0: main_thread_stack(dump(IN_BARRIER), None), 1: main_thread_stack(dump(IN_BARRIER), None)},  # all wait
    {0: main_thread_stack(dump(IN_USER_LOOP), None), 1: main_thread_stack(dump(IN_USER_LOOP), None)},  # none waits
    {},  # no stacks came back (no SIGUSR1 on this platform)
])
def test_without_a_rank_that_others_wait_for_the_idle_rank_is_named(stacks) -> None:
    assert holding_up(1, stacks, last_progress={}).local_rank == 1


def test_an_exception_out_of_a_collective_is_told_from_the_users_own() -> None:
    own = "Traceback (most recent call last):\n  File \"/work/train.py\", line 9, in <module>\nValueError: bad\n"
    assert raised_in_collective(GLOO_TRACEBACK) and not raised_in_collective(own) and not raised_in_collective("")
