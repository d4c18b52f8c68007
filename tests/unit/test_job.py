"""From parsed flags to the job: layers (preset < file < flags < --set), presets, targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.config import build_config, read_yaml_layer
from launcher.errors import ConfigError, UsageError
from launcher.flags import parse_flags
from launcher.job import PRESET_DIRS, find_preset, load_job
from launcher.targets import FunctionTarget, ModuleTarget, ScriptTarget

pytestmark = pytest.mark.timeout(30)
PRESETS = sorted((Path(__file__).resolve().parents[2] / "cluster_configs").glob("*.yaml"))


def test_presets_are_shipped():
    assert {p.stem for p in PRESETS} >= {"cpu-local", "single-node-gpus", "two-node"}


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_every_preset_loads_and_validates(preset):
    config = build_config([read_yaml_layer(preset)])
    assert config.entrypoint is None  # a preset never names what to run
    assert find_preset(preset.stem, None).resolve() == preset.resolve()


def test_preset_merges_under_the_file_and_flags_win(tmp_path):
    (tmp_path / "job.yaml").write_text("entrypoint: t.py\ncluster: cpu-local\nworld: {backend: auto}\n")
    job = load_job(parse_flags([str(tmp_path / "job.yaml"), "--max-restarts", "2"], {}))
    assert job.config.world.nprocs == "cpu"  # from the preset
    assert job.config.world.backend == "auto"  # the file beats the preset
    assert job.config.world.max_restarts == 2  # a flag beats both


def test_cluster_flag_and_unknown_preset(tmp_path):
    job = load_job(parse_flags(["--cluster", "two-node", "t.py"], {}))
    assert job.config.world.rdzv_backend == "c10d" and job.config.world.nnodes == "2"
    with pytest.raises(ConfigError, match="no such preset"):
        load_job(parse_flags(["--cluster", "nope", "t.py"], {}))


def test_a_preset_cannot_name_an_entrypoint(tmp_path):
    (tmp_path / "bad.yaml").write_text("entrypoint: x.py\n")
    with pytest.raises(ConfigError, match="cannot name what to run"):
        load_job(parse_flags(["--cluster", str(tmp_path / "bad.yaml"), "t.py"], {}))


@pytest.mark.parametrize(("argv", "target", "args"), [
    (["t.py", "--lr", "1"], ScriptTarget, ("--lr", "1")),
    (["-m", "pkg.train", "x"], ModuleTarget, ("x",)),
    (["pkg.train:main"], FunctionTarget, ()),
])
def test_targets_and_args(argv, target, args):
    job = load_job(parse_flags(argv, {}))
    assert isinstance(job.target, target) and job.args == args


def test_yaml_args_then_trailing_args(tmp_path):
    (tmp_path / "job.yaml").write_text("entrypoint: t.py\nargs: [--a, '1']\n")
    job = load_job(parse_flags([str(tmp_path / "job.yaml"), "--", "--b", "2"], {}))
    assert job.args == ("--a", "1", "--b", "2")
    assert isinstance(job.target, ScriptTarget) and job.target.path == str(tmp_path / "t.py")


def test_yaml_needs_an_entrypoint_and_no_module_switch(tmp_path):
    (tmp_path / "job.yaml").write_text("seed: 1\n")
    with pytest.raises(ConfigError, match="entrypoint: missing"):
        load_job(parse_flags([str(tmp_path / "job.yaml")], {}))
    with pytest.raises(UsageError, match=r"-m cannot run a \.yaml job"):
        load_job(parse_flags(["-m", str(tmp_path / "job.yaml")], {}))


def test_preset_folders_include_the_repository():
    assert any(folder.is_absolute() and folder.name == "cluster_configs" for folder in PRESET_DIRS)
