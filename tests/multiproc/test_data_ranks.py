"""The data pipeline with real gloo process groups: gathering metrics and DDP equivalence.

The tests run on their ranks through the project's pytest plugin (``launcher.testing``):
each rank is forked from the plugin's torch-preloaded server, joins a process group
made for the test, asserts on its own values, and ends through ``os._exit``. Ranks
started with ``torch.multiprocessing.spawn`` once ended in a full interpreter shutdown
after DDP, where a C++ thread still joinable at static destruction aborted a rank now
and then ("terminate called without an active exception"), reported as a bare
``ProcessExitedException``; here a failing rank shows its assertion.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.utils.data import TensorDataset

from launcher.runtime.data.gather import gather_for_metrics
from launcher.runtime.data.pipeline import DataPipeline
from launcher.schema import DataSettings

# own_start_methods: the plugin forks its ranks whatever PET_START_METHOD says (CI's spawn pass would repeat them).
pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("no_leftover_children"), pytest.mark.own_start_methods]

N = 10
SAMPLES, FEATURES = 32, 3


def _pipeline(ctx: Any) -> DataPipeline:
    return DataPipeline(DataSettings(batch_size=2, num_workers=0), rank=ctx.rank, world_size=ctx.world_size,
                        local_world_size=ctx.local_world_size, seed=3, device_type="cpu")


@pytest.mark.parametrize("world", [pytest.param(n, marks=pytest.mark.distributed(nprocs=n)) for n in (2, 3)])
def test_gather_for_metrics_counts_every_sample_once(world: int, ctx: Any) -> None:
    assert ctx.world_size == world
    p = _pipeline(ctx)
    data = TensorDataset(torch.arange(N))
    evals = torch.cat([b[0] for b in p.dataloader(data, eval=True)])
    train = torch.cat([b[0] for b in p.dataloader(data)])  # padded to a multiple of the world size
    assert gather_for_metrics(evals).tolist() == list(range(N))  # no shuffling in eval: global order restored
    assert sorted(gather_for_metrics(train, num_samples=N).tolist()) == list(range(N))  # padding dropped


def _model() -> torch.nn.Linear:
    torch.manual_seed(0)
    return torch.nn.Linear(FEATURES, 1)


def _data() -> TensorDataset:
    g = torch.Generator().manual_seed(1)
    return TensorDataset(torch.randn(SAMPLES, FEATURES, generator=g), torch.randn(SAMPLES, 1, generator=g))


def _train(model: torch.nn.Module, pipeline: DataPipeline, batch_size: int) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = pipeline.dataloader(_data(), batch_size=batch_size)
    for _ in pipeline.epochs(2):
        for x, y in loader:
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            opt.step()


@pytest.mark.distributed(nprocs=2)
def test_two_ranks_with_half_batches_train_like_one_rank(ctx: Any) -> None:
    ddp = torch.nn.parallel.DistributedDataParallel(_model())
    _train(ddp, _pipeline(ctx), batch_size=8 // ctx.world_size)
    single = _model()
    _train(single, DataPipeline(DataSettings(), rank=0, world_size=1, local_world_size=1, seed=3, device_type="cpu"), 8)
    trained = ddp.module.state_dict()
    for name, value in single.state_dict().items():
        torch.testing.assert_close(trained[name], value, rtol=1e-5, atol=1e-6)
