"""The data pipeline with real gloo process groups: gathering metrics and DDP equivalence.

Ranks are spawned processes (module-level functions, a FileStore: no ports).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import TensorDataset

from launcher.runtime.data.gather import gather_for_metrics
from launcher.runtime.data.pipeline import DataPipeline
from launcher.schema import DataSettings

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("no_leftover_children")]

N = 10
SAMPLES, FEATURES = 32, 3


def _join(rank: int, world: int, tmp: str) -> DataPipeline:
    dist.init_process_group("gloo", store=dist.FileStore(f"{tmp}/store", world), rank=rank, world_size=world)
    return DataPipeline(
        DataSettings(batch_size=2, num_workers=0),
        rank=rank,
        world_size=world,
        local_world_size=world,
        seed=3,
        device_type="cpu",
    )


def _gather_worker(rank: int, world: int, tmp: str) -> None:
    p = _join(rank, world, tmp)
    data = TensorDataset(torch.arange(N))
    evals = torch.cat([b[0] for b in p.dataloader(data, eval=True)])
    train = torch.cat([b[0] for b in p.dataloader(data)])  # padded to a multiple of the world size
    result = {"eval": gather_for_metrics(evals), "train": gather_for_metrics(train, num_samples=N)}
    torch.save(result, f"{tmp}/gather{rank}.pt")
    dist.destroy_process_group()


@pytest.mark.parametrize("world", [2, 3])
def test_gather_for_metrics_counts_every_sample_once(tmp_path: Path, world: int) -> None:
    mp.spawn(_gather_worker, args=(world, str(tmp_path)), nprocs=world)
    for rank in range(world):
        out = torch.load(tmp_path / f"gather{rank}.pt")
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


def _ddp_worker(rank: int, world: int, tmp: str) -> None:
    p = _join(rank, world, tmp)
    model = torch.nn.parallel.DistributedDataParallel(_model())
    _train(model, p, batch_size=8 // world)
    torch.save(model.module.state_dict(), f"{tmp}/ddp{rank}.pt")
    dist.destroy_process_group()


def test_two_ranks_with_half_batches_train_like_one_rank(tmp_path: Path) -> None:
    mp.spawn(_ddp_worker, args=(2, str(tmp_path)), nprocs=2)
    single = _model()
    _train(single, DataPipeline(DataSettings(), rank=0, world_size=1, local_world_size=1, seed=3, device_type="cpu"), 8)
    for rank in range(2):
        ddp = torch.load(tmp_path / f"ddp{rank}.pt")
        for name, value in single.state_dict().items():
            torch.testing.assert_close(ddp[name], value, rtol=1e-5, atol=1e-6)
