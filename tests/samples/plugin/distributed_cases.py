"""Copied as a test module into an inner pytest run by tests/plugin: one case of the plugin per test."""

import os
import threading

import pytest
import torch
import torch.distributed as dist

import launcher


class Point:
    def __init__(self, x: int) -> None:
        self.x = x


@pytest.fixture
def point() -> Point:
    return Point(7)


@pytest.fixture
def moved(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def lock() -> threading.Lock:
    return threading.Lock()


@pytest.mark.distributed(nprocs=3)
def test_allreduce_and_contract(ctx, tmp_path, point, moved):
    t = torch.ones(1)
    dist.all_reduce(t)
    assert t.item() == ctx.world_size == 3
    assert launcher.init() is ctx and dist.get_rank() == ctx.rank
    assert (os.environ["RANK"], os.environ["LOCAL_RANK"], os.environ["WORLD_SIZE"]) == (str(ctx.rank), str(ctx.rank), "3")
    assert os.environ["MASTER_ADDR"] and int(os.environ["MASTER_PORT"]) > 0
    assert point.x == 7
    assert os.getcwd() == str(moved)  # the pytest process's working directory when the test started
    (tmp_path / f"rank{ctx.rank}").touch()
    dist.barrier()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rank0", "rank1", "rank2"]
    print(f"stdout of rank {ctx.rank}")


@pytest.mark.distributed(nprocs=2)
def test_assertion_on_one_rank(ctx):
    values = {"rank": ctx.rank, "same": 1}
    print(f"rank {ctx.rank} compares")
    assert values == {"rank": 0, "same": 1}


@pytest.mark.distributed(nprocs=2)
def test_exception_on_every_rank(ctx):
    raise ValueError(f"bad value on rank {ctx.rank}")


@pytest.mark.distributed(nprocs=2)
def test_segfault_on_one_rank(ctx):
    if ctx.rank == 1:
        import ctypes

        ctypes.string_at(0)
    dist.barrier()


@pytest.mark.distributed(nprocs=2, timeout=2)
def test_hang(ctx):
    if ctx.rank == 1:
        threading.Event().wait()  # never set: rank 0 waits in the barrier for ever
    dist.barrier()


@pytest.mark.distributed(nprocs=2)
def test_runs_after_the_hang(ctx):
    dist.barrier()


@pytest.mark.distributed(nprocs=2)
def test_skip_inside(ctx):
    pytest.skip("skipped inside the ranks")


@pytest.mark.distributed(nprocs=2)
def test_xfail_inside(ctx):
    pytest.xfail("known to fail")


@pytest.mark.parametrize("n", [1, 5])
@pytest.mark.distributed(nprocs=2)
def test_parametrized(n, ctx):
    t = torch.tensor([n])
    dist.all_reduce(t)
    assert t.item() == 2 * n


@pytest.mark.distributed(nprocs=2)
def test_unpicklable_fixture(lock):
    pass


def _ranks_in_order(values):
    assert values == {0: 0, 1: 10}


@pytest.mark.distributed(nprocs=2, check=_ranks_in_order)
def test_return_values(ctx):
    return ctx.rank * 10


@pytest.mark.distributed(nprocs=2, backend="nccl")
def test_nccl_without_gpus(ctx):
    pass


@pytest.mark.distributed(nprocs=0)
def test_bad_mark():
    pass
