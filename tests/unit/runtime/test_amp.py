"""Mixed precision: the ``amp:`` section, ``ctx.autocast()`` / ``ctx.grad_scaler()`` on the CPU, the scaler in a
checkpoint. float16 with a real GradScaler on CUDA is in tests/gpu/test_amp_cuda.py."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import pytest
import torch
from torch import nn

from launcher.config.layers import override_layer, read_yaml_layer
from launcher.config.validate import build_config
from launcher.errors import ConfigError
from launcher.runtime.amp import FLOAT16_ON_CPU, Amp, NoOpScaler
from launcher.runtime.checkpoint.checkpointer import Checkpointer
from launcher.runtime.context import Context, WorldView
from launcher.schema import AmpSettings, CheckpointSettings, JobConfig

pytestmark = pytest.mark.timeout(60)

CPU = torch.device("cpu")


def _config(tmp_path: Path, section: str, *overrides: str) -> JobConfig:
    path = tmp_path / "train.yaml"
    path.write_text(f"entrypoint: t.py\namp:\n{section}")
    return build_config([read_yaml_layer(path), override_layer(list(overrides))])


def _context(settings: AmpSettings, rank: int = 0) -> Context:
    world = WorldView(rank, rank, 2, 2, 0, launched=False)
    return Context(world, "gloo", CPU, JobConfig(amp=settings), owns_group=False)


# -- the amp: section -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("section", "overrides", "fragment"), [
    ("  enabled: true\n  dtype: float32\n", (), "train.yaml:4: amp.dtype: expected 'float16' or 'bfloat16'"),
    ("  enable: true\n", (), "train.yaml:3: amp.enable: unknown key (did you mean 'enabled'?)"),
    ("  enabled: sometimes\n", (), "train.yaml:3: amp.enabled: expected true or false"),
    ("  enabled: true\n", ("amp.dtype=fp16",), "--set amp.dtype=fp16: amp.dtype: expected 'float16' or 'bfloat16'"),
])  # fmt: skip
def test_bad_amp_settings_name_the_place_the_key_and_the_choices(tmp_path, section, overrides, fragment):
    with pytest.raises(ConfigError) as caught:
        _config(tmp_path, section, *overrides)
    assert fragment in str(caught.value), str(caught.value)
    assert caught.value.exit_code == 2 and caught.value.hint


def test_amp_is_off_by_default_and_set_turns_it_on(tmp_path):
    assert _config(tmp_path, "  dtype: float16\n").amp == AmpSettings(enabled=False, dtype="float16")
    assert _config(tmp_path, "", "amp.enabled=true").amp == AmpSettings(enabled=True, dtype="bfloat16")


# -- autocast and the scaler on the CPU -------------------------------------------------------------------

def test_amp_off_is_a_null_context_and_a_no_op_scaler():
    ctx = _context(AmpSettings())
    assert isinstance(ctx.autocast(), contextlib.nullcontext)
    with ctx.autocast():
        assert nn.Linear(4, 2)(torch.randn(3, 4)).dtype == torch.float32
    scaler = ctx.grad_scaler()
    assert isinstance(scaler, NoOpScaler) and ctx.grad_scaler() is scaler
    loss = torch.tensor(2.0, requires_grad=True)
    assert scaler.scale(loss) is loss and scaler.state_dict() == {}


def test_bfloat16_on_the_cpu_trains_with_the_forward_in_bfloat16():
    torch.manual_seed(0)
    ctx = _context(AmpSettings(enabled=True, dtype="bfloat16"))
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    inputs = torch.randn(64, 8)
    targets = inputs @ torch.randn(8, 1)
    scaler = ctx.grad_scaler()
    losses, dtypes = [], set()
    for _ in range(40):
        optimizer.zero_grad()
        with ctx.autocast():
            outputs = model(inputs)
            dtypes.add(outputs.dtype)
            loss = nn.functional.mse_loss(outputs.float(), targets)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        losses.append(loss.item())
    assert dtypes == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast leaves the weights in float32
    assert losses[-1] < 0.5 * losses[0], losses


def test_float16_on_the_cpu_runs_as_bfloat16_with_one_warning_on_rank_0():
    said: list[str] = []
    amp = Amp(AmpSettings(enabled=True, dtype="float16"), CPU, rank=0, warn=said.append)
    assert amp.dtype == torch.bfloat16 and said == [FLOAT16_ON_CPU]
    with amp.autocast():
        assert nn.Linear(4, 2)(torch.randn(3, 4)).dtype == torch.bfloat16
    assert isinstance(amp.grad_scaler(), NoOpScaler)
    quiet: list[str] = []
    Amp(AmpSettings(enabled=True, dtype="float16"), CPU, rank=1, warn=quiet.append)
    assert quiet == []


def test_float16_on_cuda_gets_a_real_grad_scaler():
    amp = Amp(AmpSettings(enabled=True, dtype="float16"), torch.device("cuda", 0))
    with pytest.warns(UserWarning) if not torch.cuda.is_available() else contextlib.nullcontext():
        scaler = amp.grad_scaler()  # without CUDA torch builds it disabled, with a warning
    assert isinstance(scaler, torch.amp.GradScaler) and amp.grad_scaler() is scaler
    assert isinstance(Amp(AmpSettings(enabled=True), torch.device("cuda", 0)).grad_scaler(), NoOpScaler)


# -- the scaler in a checkpoint ---------------------------------------------------------------------------

def _checkpointer(folder: Path) -> Checkpointer:
    return Checkpointer(CheckpointSettings(dir=str(folder), async_=False), rank=0, world_size=1,
                        state=dict, load_state=lambda _state: None)


def test_a_grad_scalers_state_round_trips_through_a_checkpoint(tmp_path):
    model = nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=3)
    for inputs in (torch.randn(2, 4), torch.full((2, 4), float("inf")), torch.randn(2, 4)):
        optimizer.zero_grad()
        scaler.scale(model(inputs).sum()).backward()
        scaler.step(optimizer)
        scaler.update()  # the inf step halves the scale; the others count towards growth
    saved = scaler.state_dict()
    assert saved["scale"] == 512.0 and saved["_growth_tracker"] == 1
    ckpt = _checkpointer(tmp_path)
    ckpt.save(3, model=model, optimizer=optimizer, scaler=scaler)
    ckpt.close()

    fresh = torch.amp.GradScaler("cpu")
    restored = _checkpointer(tmp_path).restore(scaler=fresh)
    assert restored is not None and restored.step == 3
    assert fresh.state_dict() == saved and fresh.get_scale() == 512.0


def test_no_op_and_real_scalers_resume_from_each_others_checkpoints(tmp_path, caplog):
    ctx = _context(AmpSettings(enabled=True, dtype="bfloat16"))
    ckpt = _checkpointer(tmp_path)
    ckpt.save(1, scaler=ctx.grad_scaler())
    ckpt.save(2, scaler=torch.amp.GradScaler("cpu", init_scale=256.0))
    ckpt.close()

    def restore(step: int, scaler: object) -> None:
        folder = tmp_path / f"step-{step:09d}"
        restored = Checkpointer(CheckpointSettings(dir=str(tmp_path), resume=str(folder)), rank=0, world_size=1,
                                state=dict, load_state=lambda _state: None).restore(scaler=scaler)
        assert restored is not None and restored.step == step

    restore(2, NoOpScaler())  # saved with loss scaling (float16 on GPUs), resumed without (on a CPU)
    real = torch.amp.GradScaler("cpu", init_scale=8.0)
    with caplog.at_level(logging.INFO, logger="launcher.runtime"):
        restore(1, real)  # saved without loss scaling, resumed with: the scaler starts afresh
    assert real.get_scale() == 8.0 and "scaler starts from its initial scale" in caplog.text
