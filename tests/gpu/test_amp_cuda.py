"""Mixed precision on CUDA (marked ``gpu``; skipped without CUDA): float16 autocast with a real GradScaler."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from launcher.runtime.amp import Amp
from launcher.runtime.checkpoint.checkpointer import Checkpointer
from launcher.schema import AmpSettings, CheckpointSettings

pytestmark = [pytest.mark.gpu, pytest.mark.timeout(180),
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_float16_trains_with_a_scaler_and_the_scaler_resumes(tmp_path):
    torch.manual_seed(0)
    device = torch.device("cuda", 0)
    amp = Amp(AmpSettings(enabled=True, dtype="float16"), device)
    scaler = amp.grad_scaler()
    assert isinstance(scaler, torch.amp.GradScaler) and scaler.is_enabled()
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1)).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    inputs = torch.randn(64, 8, device=device)
    targets = inputs @ torch.randn(8, 1, device=device)
    losses = []
    for _ in range(40):
        optimizer.zero_grad()
        with amp.autocast():
            outputs = model(inputs)
            assert outputs.dtype == torch.float16
            loss = nn.functional.mse_loss(outputs.float(), targets)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
    ckpt = Checkpointer(CheckpointSettings(dir=str(tmp_path), async_=False), rank=0, world_size=1,
                        state=dict, load_state=lambda _state: None)
    ckpt.save(40, model=model, optimizer=optimizer, scaler=scaler)
    ckpt.close()
    fresh = torch.amp.GradScaler("cuda", init_scale=1.0)
    Checkpointer(CheckpointSettings(dir=str(tmp_path)), rank=0, world_size=1, state=dict,
                 load_state=lambda _state: None).restore(scaler=fresh)
    assert fresh.state_dict() == scaler.state_dict()
