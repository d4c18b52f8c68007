"""From parsed flags to the job: layers (preset < file < flags < --set), presets, targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.cli.flags import parse_flags
from launcher.config.job import PRESET_DIRS, SHIPPED_PRESETS, find_preset, load_job
from launcher.config.layers import read_yaml_layer
from launcher.config.validate import build_config
from launcher.errors import ConfigError, UsageError
from launcher.targets import FunctionTarget, ModuleTarget, ScriptTarget

pytestmark = pytest.mark.timeout(30)
PRESETS = sorted((Path(__file__).resolve().parents[3] / "launcher" / "config" / "presets").glob("*.yaml"))


def test_presets_are_shipped():
    assert {p.stem for p in PRESETS} >= {"cpu-local", "single-node-gpus", "two-node"}


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_every_preset_loads_and_validates(preset):
    config = build_config([read_yaml_layer(preset)])
    assert config.entrypoint is None  # a preset never names what to run
    assert find_preset(preset.stem, None).resolve() == preset.resolve()


def test_preset_merges_under_the_file_and_flags_win(tmp_path):
    (tmp_path / "job.yaml").write_text("entrypoint: t.py\ncluster: cpu-local\nworld: {backend: auto}\n")
    job = load_job(parse_flags([str(tmp_path / "job.yaml"), "--max-restarts", "2"], {}).job)
    assert job.config.world.nprocs == "cpu"  # from the preset
    assert job.config.world.backend == "auto"  # the file beats the preset
    assert job.config.world.max_restarts == 2  # a flag beats both


def test_cluster_flag_and_unknown_preset(tmp_path):
    job = load_job(parse_flags(["--cluster", "two-node", "t.py"], {}).job)
    assert job.config.world.rdzv_backend == "c10d" and job.config.world.nnodes == "2"
    with pytest.raises(ConfigError, match="no such preset"):
        load_job(parse_flags(["--cluster", "nope", "t.py"], {}).job)


def test_a_preset_cannot_name_an_entrypoint(tmp_path):
    (tmp_path / "bad.yaml").write_text("entrypoint: x.py\n")
    with pytest.raises(ConfigError, match="cannot name what to run"):
        load_job(parse_flags(["--cluster", str(tmp_path / "bad.yaml"), "t.py"], {}).job)


@pytest.mark.parametrize(("argv", "target", "args"), [
    (["t.py", "--lr", "1"], ScriptTarget, ("--lr", "1")),
    (["-m", "pkg.train", "x"], ModuleTarget, ("x",)),
    (["pkg.train:main"], FunctionTarget, ()),
])
def test_targets_and_args(argv, target, args):
    job = load_job(parse_flags(argv, {}).job)
    assert isinstance(job.target, target) and job.args == args


def test_yaml_args_then_trailing_args(tmp_path):
    (tmp_path / "job.yaml").write_text("entrypoint: t.py\nargs: [--a, '1']\n")
    job = load_job(parse_flags([str(tmp_path / "job.yaml"), "--", "--b", "2"], {}).job)
    assert job.args == ("--a", "1", "--b", "2")
    assert isinstance(job.target, ScriptTarget) and job.target.path == str(tmp_path / "t.py")


def test_yaml_needs_an_entrypoint_and_no_module_switch(tmp_path):
    (tmp_path / "job.yaml").write_text("seed: 1\n")
    with pytest.raises(ConfigError, match="entrypoint: missing"):
        load_job(parse_flags([str(tmp_path / "job.yaml")], {}).job)
    with pytest.raises(UsageError, match=r"-m cannot run a \.yaml job"):
        load_job(parse_flags(["-m", str(tmp_path / "job.yaml")], {}).job)


def test_presets_are_found_in_the_project_then_in_the_package(tmp_path, monkeypatch):
    assert PRESET_DIRS[-1] == SHIPPED_PRESETS and SHIPPED_PRESETS.is_relative_to(Path(__file__).parents[3] / "launcher")
    (tmp_path / "cluster_configs").mkdir()
    (tmp_path / "cluster_configs" / "cpu-local.yaml").write_text("world: {nprocs: 3}\n")
    monkeypatch.chdir(tmp_path)  # a project's own cluster_configs/ comes before the shipped presets
    assert find_preset("cpu-local", None).resolve() == (tmp_path / "cluster_configs" / "cpu-local.yaml").resolve()


@pytest.mark.parametrize(("argv", "warned"), [
    (["--standalone", "--rdzv-endpoint", "node0:29400", "t.py"], "--standalone ignores --rdzv-endpoint node0:29400:"),
    (["--standalone", "--master-addr", "10.0.0.1", "--master-port", "29500", "t.py"],
     "--standalone ignores --master-addr 10.0.0.1, --master-port 29500:"),
    (["--standalone", "--rdzv-backend", "c10d", "t.py"], None),  # what torchrun's --standalone uses anyway
    (["--rdzv-endpoint", "node0:29400", "--rdzv-backend", "c10d", "t.py"], None),  # not standalone: used
])
def test_standalone_warns_about_the_rendezvous_settings_it_ignores(argv, warned):
    warnings = load_job(parse_flags(argv, {}).job).warnings
    if warned is None:
        assert warnings == ()
    else:
        (warning,) = warnings
        assert warning.startswith(warned) and "explicitly set values are ignored" in warning
