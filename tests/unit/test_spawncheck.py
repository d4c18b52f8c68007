"""Worker-side spawn checks on live objects; CUDA is faked, torch is never imported here."""

from __future__ import annotations

import functools
import pickle
import sys
import threading
import types

import pytest

from launcher.runtime import spawncheck
from launcher.runtime.spawncheck import (
    cuda_fork_problem,
    cuda_initialized_before_fork,
    describe_unpicklable,
    spawn_problem,
)

pytestmark = pytest.mark.timeout(60)


def double(x: int, key: object = None) -> int:
    return 2 * x


class Compose:
    def __init__(self, transforms: list[object]) -> None:
        self.transforms = transforms


class Numbers:
    def __init__(self, transform: object) -> None:
        self.items = list(range(10))
        self.transform = transform


class Slotted:
    __slots__ = ("fn",)

    def __init__(self, fn: object) -> None:
        self.fn = fn


def make_local() -> object:
    def inner(x: int) -> int:
        return x

    return inner


LAMBDA_LINE = sys._getframe().f_lineno + 1
square = lambda x: x * x  # noqa: E731


def test_lambda_deep_in_a_dataset_is_named_with_its_place() -> None:
    dataset = Numbers(Compose([double, square]))
    found = describe_unpicklable(dataset, "dataset")
    assert found == f"lambda at test_spawncheck.py:{LAMBDA_LINE} (dataset.transform.transforms[1])"
    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(dataset)


def test_local_function_partial_and_slots() -> None:
    local = make_local()
    line = make_local.__code__.co_firstlineno + 1
    expected = f"local function make_local.<locals>.inner at test_spawncheck.py:{line} (collate_fn)"
    assert describe_unpicklable(local, "collate_fn") == expected
    found = describe_unpicklable(functools.partial(double, key=local), "worker_init_fn")
    assert found is not None and found.endswith("(worker_init_fn.keywords['key'])")
    assert describe_unpicklable(Slotted(local), "obj") is not None


@pytest.mark.parametrize(
    "obj",
    [Numbers(Compose([double])), functools.partial(double, 3), [1, "a", {"k": (double,)}], Slotted(double)],
)
def test_picklable_objects_pass(obj: object) -> None:
    assert describe_unpicklable(obj) is None
    pickle.dumps(obj)  # agrees with pickle itself


@pytest.mark.parametrize(
    ("obj", "fragment"),
    [
        (Numbers(types), "module types"),
        (Numbers(threading.Lock()), "lock"),
        (Numbers(x for x in range(3)), "generator"),
    ],
)
def test_other_unpicklable_leaves(obj: object, fragment: str) -> None:
    found = describe_unpicklable(obj, "dataset")
    assert found is not None and fragment in found and "(dataset.transform)" in found


def test_cycles_terminate() -> None:
    a: dict[str, object] = {}
    a["self"] = a
    assert describe_unpicklable(a) is None


def test_spawn_problem_only_for_methods_that_pickle() -> None:
    assert spawn_problem(square, "collate_fn", "fork") is None
    line = spawn_problem(square, "collate_fn", "spawn")
    assert line is not None and "cannot be pickled for spawn" in line and spawncheck.FIX_PICKLE in line


def test_cuda_check_fails_with_a_fake_initialised_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    assert cuda_initialized_before_fork(lambda: True)
    assert not cuda_initialized_before_fork(lambda: False)
    fake_torch = types.SimpleNamespace(cuda=types.SimpleNamespace(is_initialized=lambda: True))
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    assert cuda_initialized_before_fork()
    problem = cuda_fork_problem("fork")
    assert problem is not None and spawncheck.FIX_CUDA_FORK in problem
    assert cuda_fork_problem("forkserver") is None


def test_no_torch_means_no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    assert not cuda_initialized_before_fork()
    assert "torch" not in sys.modules
