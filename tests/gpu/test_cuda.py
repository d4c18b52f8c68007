"""On a CUDA machine (marked ``gpu``; skipped without CUDA): NCCL, device placement, pin_memory."""

from __future__ import annotations

import json

import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.timeout(180),
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_nccl_job_places_each_rank_on_its_gpu(tmp_path, launcher):
    nprocs = min(torch.cuda.device_count(), 2)
    ran = launcher(["--nprocs", nprocs, "funcs.py:record", tmp_path])
    assert ran.returncode == 0, ran.stderr
    seen = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(nprocs)]
    assert all(s["backend"] == "nccl" and s["device"] == f"cuda:{s['local_rank']}" for s in seen)


def test_pin_memory_auto_pins_on_cuda():
    from launcher.runtime.data.pipeline import DataPipeline
    from launcher.schema import DataSettings

    pipeline = DataPipeline(DataSettings(batch_size=4, num_workers=0), rank=0, world_size=1, local_world_size=1,
                            seed=0, device_type="cuda")
    loader = pipeline.dataloader(torch.arange(16.0))
    assert loader.pin_memory and next(iter(loader)).is_pinned()
