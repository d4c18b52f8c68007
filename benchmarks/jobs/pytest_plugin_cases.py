"""Five trivial 2-rank all_reduce tests with the launcher's pytest plugin (``benchmarks/pytest_plugin.py``).

The same tests as ``pytest_mptc_cases.py``, written as ``@pytest.mark.distributed`` tests.
"""

import pytest
import torch
import torch.distributed as dist


def _all_reduce(ctx):
    t = torch.ones(1)
    dist.all_reduce(t)
    assert t.item() == ctx.world_size


@pytest.mark.distributed(nprocs=2)
def test_allreduce_0(ctx):
    _all_reduce(ctx)


@pytest.mark.distributed(nprocs=2)
def test_allreduce_1(ctx):
    _all_reduce(ctx)


@pytest.mark.distributed(nprocs=2)
def test_allreduce_2(ctx):
    _all_reduce(ctx)


@pytest.mark.distributed(nprocs=2)
def test_allreduce_3(ctx):
    _all_reduce(ctx)


@pytest.mark.distributed(nprocs=2)
def test_allreduce_4(ctx):
    _all_reduce(ctx)
