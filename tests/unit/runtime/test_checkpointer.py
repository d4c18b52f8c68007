"""The checkpointer in a world of one: what a save holds, what restore gives back, and what it refuses.

Multi-rank agreement and the bitwise resume are in tests/multiproc/test_checkpoint_resume.py.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from launcher.errors import CheckpointError, ConfigError
from launcher.runtime.checkpoint.checkpointer import Checkpointer, unwrap
from launcher.runtime.checkpoint.layout import CheckpointDir
from launcher.runtime.checkpoint.snapshot import Snapshots
from launcher.runtime.data.pipeline import DataPipeline
from launcher.schema import CheckpointSettings, DataSettings

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("no_leftover_children")]


class Training:
    """A model, its optimizer, schedule and scaler, and a data pipeline: everything a checkpoint holds."""

    def __init__(self, width: int = 4) -> None:
        self.model = nn.Sequential(nn.Linear(width, 8), nn.Dropout(0.5), nn.Linear(8, 1))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=0.1)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=2, gamma=0.5)
        self.scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
        self.data = DataPipeline(DataSettings(batch_size=2, num_workers=0), rank=0, world_size=1,
                                 local_world_size=1, seed=1, device_type="cpu")
        self.loader = self.data.dataloader(list(range(10)))
        self.batches = iter(self.loader)

    def step(self) -> None:
        next(self.batches)
        self.optimizer.zero_grad()
        self.model(torch.randn(3, 4)).sum().backward()
        self.optimizer.step()
        self.scheduler.step()

    def objects(self) -> dict[str, Any]:
        return {"model": self.model, "optimizer": self.optimizer, "scheduler": self.scheduler, "scaler": self.scaler}

    def checkpointer(self, **settings: Any) -> Checkpointer:
        return Checkpointer(CheckpointSettings(**settings), rank=0, world_size=1,
                            state=lambda: {"data": self.data.state_dict()},
                            load_state=lambda state: self.data.load_state_dict(state["data"]))


def draws() -> tuple[float, float, float]:
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_restore_gives_back_every_part_of_the_state_and_the_random_streams(tmp_path: Path) -> None:
    first = Training()
    for _ in range(3):
        first.step()
    ckpt = first.checkpointer(dir=str(tmp_path))
    ckpt.save(3, **first.objects(), extra={"best": 0.5, "tags": ["a", "b"]})
    ckpt.close()
    expected_draws = draws()
    weights = {k: v.clone() for k, v in first.model.state_dict().items()}

    second = Training()  # fresh objects, other random streams
    second.step()
    restored = second.checkpointer(dir=str(tmp_path)).restore(**second.objects())
    assert restored is not None
    assert (restored.step, restored.extra) == (3, {"best": 0.5, "tags": ["a", "b"]})
    assert restored.path == str(tmp_path / "step-000000003")
    assert draws() == expected_draws  # python, numpy and torch continue where the saved run was
    for name, value in second.model.state_dict().items():
        assert torch.equal(value, weights[name])
    assert second.optimizer.state_dict()["state"][0]["step"] == 3
    assert second.scheduler.state_dict() == first.scheduler.state_dict()
    assert second.scaler.get_scale() == 1024.0
    assert second.data.state_dict() == first.data.state_dict()  # the loader resumes after 3 batches
    assert [int(i) for batch in second.loader for i in batch] == [int(i) for batch in first.batches for i in batch]


def test_the_snapshot_is_taken_at_save_and_later_training_does_not_change_it(tmp_path: Path) -> None:
    run = Training()
    ckpt = run.checkpointer(dir=str(tmp_path))
    ckpt.save(1, model=run.model)
    saved = {k: v.clone() for k, v in run.model.state_dict().items()}
    with torch.no_grad():
        for parameter in run.model.parameters():
            parameter.add_(1.0)  # while the writer may still be writing
    ckpt.save(2, model=run.model)  # reuses the first snapshot's buffers once that save is written
    ckpt.close()
    shared = CheckpointDir(str(tmp_path)).load_part(1, "shared")
    for name, value in shared["model"].items():
        assert torch.equal(value, saved[name])


def test_the_next_optimizer_step_waits_for_the_copy_of_parameters_and_optimizer_state(tmp_path: Path) -> None:
    run = Training()
    run.step()
    ckpt = run.checkpointer(dir=str(tmp_path))
    ckpt.save(1, model=run.model, optimizer=run.optimizer)
    saved = {k: v.clone() for k, v in run.model.state_dict().items()}
    exp_avg = run.optimizer.state[run.optimizer.param_groups[0]["params"][0]]["exp_avg"].clone()
    run.step()  # at once: its optimizer step must wait until the writer copied what it changes
    ckpt.close()
    shared = CheckpointDir(str(tmp_path)).load_part(1, "shared")
    for name, value in shared["model"].items():
        assert torch.equal(value, saved[name])
    assert torch.equal(shared["optimizer"]["state"][0]["exp_avg"], exp_avg)
    assert ckpt.last_timing is not None and ckpt.last_timing.held_at_step >= 0


def test_a_parameter_changed_in_place_before_its_copy_fails_the_save_instead_of_tearing_it() -> None:
    weight = torch.zeros(4)
    snapshot = Snapshots().take({"shared": {"model": {"w": weight}}}, later=lambda tensor: True)
    weight.add_(1.0)  # not through an optimizer step
    with pytest.raises(CheckpointError, match=r"model\['w'\] was changed in place after save\(\)"):
        snapshot.finish()


def test_a_copy_that_fails_is_raised_by_the_writer_and_never_holds_the_step_for_ever() -> None:
    sparse = torch.zeros(4).to_sparse()  # no dense buffer can take it: the copy raises
    snapshot = Snapshots().take({"shared": {"model": {"w": sparse}}}, later=lambda tensor: True)
    with pytest.raises(RuntimeError):
        snapshot.finish()
    assert snapshot.copied.is_set()
    snapshot.copy_rest()  # what the next optimizer step does: returns at once


def test_data_parallel_and_compile_wrappers_are_unwrapped() -> None:
    inner = nn.Linear(2, 2)
    assert unwrap(nn.DataParallel(inner)) is inner

    class Compiled(nn.Module):  # what torch.compile returns keeps the module as _orig_mod
        def __init__(self) -> None:
            super().__init__()
            self._orig_mod = nn.DataParallel(inner)

    assert unwrap(Compiled()) is inner


def test_maybe_save_follows_every_steps_and_keeps_k(tmp_path: Path) -> None:
    run = Training()
    ckpt = run.checkpointer(dir=str(tmp_path), every_steps=2, keep=2)
    saved = [step for step in range(1, 8) if ckpt.maybe_save(step, model=run.model)]
    ckpt.close()
    assert saved == [2, 4, 6]
    folder = CheckpointDir(str(tmp_path))
    assert folder.complete_steps() == [4, 6]
    assert json.loads((tmp_path / "step-000000006" / "complete.json").read_text())["world_size"] == 1
    assert (tmp_path / "latest").read_text() == "step-000000006\n"


def test_every_seconds_is_measured_from_the_last_save(tmp_path: Path) -> None:
    run = Training()
    often = run.checkpointer(dir=str(tmp_path / "often"), every_seconds=1e-9)
    rarely = run.checkpointer(dir=str(tmp_path / "rarely"), every_seconds=3600)
    assert [often.maybe_save(s, model=run.model) for s in (1, 2)] == [True, True]
    assert [rarely.maybe_save(s, model=run.model) for s in (1, 2)] == [False, False]
    often.close(), rarely.close()


def test_a_value_a_checkpoint_cannot_hold_is_refused_at_save_naming_where(tmp_path: Path) -> None:
    run = Training()
    ckpt = run.checkpointer(dir=str(tmp_path))
    with pytest.raises(ConfigError) as raised:
        ckpt.save(1, model=run.model, extra={"history": [1.0, np.float64(2.0)]})
    assert str(raised.value).startswith("checkpoint: extra['history'][1] is a numpy.float64: a checkpoint holds")
    assert CheckpointDir(str(tmp_path)).steps() == []  # nothing was written
    ckpt.close()


def test_a_model_that_does_not_fit_is_one_line_naming_the_file(tmp_path: Path) -> None:
    run = Training()
    ckpt = run.checkpointer(dir=str(tmp_path))
    ckpt.save(1, model=run.model)
    ckpt.close()
    other = Training(width=6)
    with pytest.raises(CheckpointError) as raised:
        other.checkpointer(dir=str(tmp_path)).restore(model=other.model)
    message = str(raised.value)
    assert message.startswith(f"{tmp_path}/step-000000001/shared.pt: the model state does not fit this job's model: ")
    assert "size mismatch for 0.weight" in message and "\n" not in message


def test_restoring_what_was_not_saved_is_refused(tmp_path: Path) -> None:
    run = Training()
    ckpt = run.checkpointer(dir=str(tmp_path))
    ckpt.save(1, model=run.model)
    ckpt.close()
    with pytest.raises(CheckpointError, match=r"shared.pt: holds no optimizer state \(none was passed to save\(\)\)"):
        run.checkpointer(dir=str(tmp_path)).restore(optimizer=run.optimizer)


def test_resume_never_auto_and_a_path(tmp_path: Path) -> None:
    run = Training()
    ckpt = run.checkpointer(dir=str(tmp_path / "a"), every_steps=1, keep=None)
    for step in (1, 2):
        ckpt.maybe_save(step, model=run.model)
    ckpt.close()
    assert run.checkpointer(dir=str(tmp_path / "a"), resume="never").restore(model=run.model) is None
    assert run.checkpointer(dir=str(tmp_path / "empty")).restore(model=run.model) is None  # auto, nothing yet
    found = run.checkpointer(dir=str(tmp_path / "a")).restore(model=run.model)
    assert found is not None and found.step == 2
    path = str(tmp_path / "a" / "step-000000001")
    found = run.checkpointer(resume=path).restore(model=run.model)  # no dir needed to load one
    assert found is not None and found.step == 1
    (tmp_path / "nothing").mkdir()
    with pytest.raises(CheckpointError, match="nothing: holds no complete checkpoint"):
        run.checkpointer(resume=str(tmp_path / "nothing")).restore(model=run.model)


def test_another_world_size_loads_the_shared_state_and_says_what_it_did_not(tmp_path: Path, caplog) -> None:
    run = Training()
    for _ in range(2):
        run.step()
    ckpt = run.checkpointer(dir=str(tmp_path))
    ckpt.save(2, model=run.model)
    ckpt.close()
    folder = tmp_path / "step-000000002"
    manifest = json.loads((folder / "complete.json").read_text())
    (folder / "complete.json").write_text(json.dumps({**manifest, "world_size": 2}))  # as if saved by 2 ranks
    other = Training()
    with caplog.at_level(logging.INFO, logger="launcher.runtime"):
        restored = other.checkpointer(dir=str(tmp_path)).restore(model=other.model)
    assert restored is not None and restored.step == 2
    assert other.data.state_dict() == run.data.state_dict()  # rank 0's loader positions, which are global
    assert "was saved by 2 rank(s), this job has 1" in caplog.text and "RNG states are not" in caplog.text


def test_saving_without_a_dir_says_where_to_set_it() -> None:
    run = Training()
    with pytest.raises(ConfigError, match=r"checkpoint.dir is not set: there is nowhere to save"):
        run.checkpointer().save(1, model=run.model)
