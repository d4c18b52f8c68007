"""The distributed mark's arguments: defaults, positional nprocs, and one clear line for each mistake."""

from __future__ import annotations

from typing import Any

import pytest

from launcher.testing.mark import Distributed, MarkError, read_mark


def test_defaults_and_positional_nprocs() -> None:
    assert read_mark((), {}) == Distributed(nprocs=2, backend="gloo", timeout=30.0, check=None)
    assert read_mark((4,), {"backend": "auto", "timeout": 5}) == Distributed(4, "auto", 5)
    assert read_mark((), {"nprocs": "gpu", "backend": "nccl"}).nprocs == "gpu"


@pytest.mark.parametrize(("args", "kwargs", "message"), [
    ((), {"nproc": 2}, "unknown argument 'nproc'"),
    ((2,), {"nprocs": 2}, "only nprocs may be given by position"),
    ((), {"nprocs": 0}, "nprocs must be a positive integer or 'gpu', got 0"),
    ((), {"nprocs": "2"}, "nprocs must be a positive integer or 'gpu', got '2'"),
    ((), {"nprocs": True}, "nprocs must be a positive integer or 'gpu', got True"),
    ((), {"backend": "mpi"}, "backend must be one of 'gloo', 'nccl', 'auto', got 'mpi'"),
    ((), {"timeout": 0}, "timeout must be a positive number of seconds, got 0"),
    ((), {"check": "values"}, "check must be a function of {rank: return value}, got 'values'"),
])
def test_mistakes(args: tuple[Any, ...], kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(MarkError) as raised:
        read_mark(args, kwargs)
    assert str(raised.value).startswith(message)
