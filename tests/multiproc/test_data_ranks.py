"""The data pipeline with real gloo process groups: gathering metrics and DDP equivalence.

Ranks run through the launcher's own machinery (``launcher.launch``: module-level
functions, the group formed by the rank context, values handed back through
elastic). Ranks started with ``torch.multiprocessing.spawn`` ended in a full
interpreter shutdown after DDP, where a C++ thread still joinable at static
destruction aborted a rank now and then ("terminate called without an active
exception"); the launcher's workers end through ``os._exit`` after atexit.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.utils.data import TensorDataset

import launcher
from launcher.runtime.data.gather import gather_for_metrics
from launcher.runtime.data.pipeline import DataPipeline
from launcher.schema import DataSettings

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("token", "no_leftover_children")]

N = 10
SAMPLES, FEATURES = 32, 3


def _pipeline(ctx: Any) -> DataPipeline:
    return DataPipeline(DataSettings(batch_size=2, num_workers=0), rank=ctx.rank, world_size=ctx.world_size,
                        local_world_size=ctx.local_world_size, seed=3, device_type="cpu")


def _gather_worker(ctx: Any) -> dict[str, torch.Tensor]:
    p = _pipeline(ctx)
    data = TensorDataset(torch.arange(N))
    evals = torch.cat([b[0] for b in p.dataloader(data, eval=True)])
    train = torch.cat([b[0] for b in p.dataloader(data)])  # padded to a multiple of the world size
    return {"eval": gather_for_metrics(evals), "train": gather_for_metrics(train, num_samples=N)}


@pytest.mark.parametrize("world", [2, 3])
def test_gather_for_metrics_counts_every_sample_once(world: int) -> None:
    result = launcher.launch(_gather_worker, nprocs=world)
    assert sorted(result.return_values) == list(range(world))
    for out in result.return_values.values():
        assert out["eval"].tolist() == list(range(N))  # no shuffling in eval: global order restored
        assert sorted(out["train"].tolist()) == list(range(N))  # padding dropped


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


def _ddp_worker(ctx: Any) -> dict[str, torch.Tensor]:
    model = torch.nn.parallel.DistributedDataParallel(_model())
    _train(model, _pipeline(ctx), batch_size=8 // ctx.world_size)
    return dict(model.module.state_dict())


def test_two_ranks_with_half_batches_train_like_one_rank() -> None:
    result = launcher.launch(_ddp_worker, nprocs=2)
    single = _model()
    _train(single, DataPipeline(DataSettings(), rank=0, world_size=1, local_world_size=1, seed=3, device_type="cpu"), 8)
    assert sorted(result.return_values) == [0, 1]
    for ddp in result.return_values.values():
        for name, value in single.state_dict().items():
            torch.testing.assert_close(ddp[name], value, rtol=1e-5, atol=1e-6)
