"""Config: YAML with line numbers, one generic validator, overrides, layers, path resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.config.layers import Layer, flag_layer, override_layer, read_yaml_layer
from launcher.config.validate import build_config, check_job
from launcher.errors import ConfigError
from launcher.schema import JobConfig, WorldSettings

pytestmark = pytest.mark.timeout(30)


def _yaml(tmp_path: Path, text: str, name: str = "train.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("entrypoint: t.py\nworld:\n  nprocz: 2\n",
         "train.yaml:3: world.nprocz: unknown key (did you mean 'nprocs'?)"),
        ("entrypoint: t.py\nworld:\n  nprocs: four\n", "train.yaml:3: world.nprocs: expected an integer or 'auto'"),
        ("entrypoint: t.py\nworld:\n  nprocs: 0\n", "train.yaml:3: world.nprocs: must be >= 1"),
        ("entrypoint: t.py\nworld: [1, 2\n", "train.yaml:3: malformed YAML"),
        ("entrypoint: t.py\ndata:\n  batch_size: true\n",
         "train.yaml:3: data.batch_size: expected an integer"),
        ("entrypoint: t.py\nmonitr: {}\n", "train.yaml:2: monitr: unknown key"),
        ("entrypoint: t.py\nworld: 4\n", "train.yaml:2: world: expected a mapping"),
        ("- a\n- b\n", "expected a mapping of keys at top level"),
        ("entrypoint: t.py\nworld:\n  backend: mpi\n", "world.backend: expected 'auto' or 'nccl' or 'gloo'"),
        ("entrypoint: t.py\nargs: {a: 1}\n", "train.yaml:2: args: expected a list"),
    ],
)
def test_bad_yaml_names_file_line_key_and_fix(tmp_path, text, fragment):
    with pytest.raises(ConfigError) as caught:
        build_config([read_yaml_layer(_yaml(tmp_path, text))])
    assert fragment in str(caught.value)
    assert caught.value.hint  # every error carries a fix


def test_unreadable_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        read_yaml_layer(tmp_path / "missing.yaml")


def test_yaml_is_loaded_safely(tmp_path):
    path = _yaml(tmp_path, "entrypoint: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match="malformed YAML"):
        read_yaml_layer(path)


def test_layers_later_wins_and_types_follow_the_schema(tmp_path):
    text = "entrypoint: t.py\nseed: 1\nworld: {nprocs: 2, master_addr: 10.0.0.1}\ndata: {batch_size: 8}\n"
    path = _yaml(tmp_path, text)
    config = build_config([
        read_yaml_layer(path),
        flag_layer({"world.nprocs": (3, "--nprocs")}),
        override_layer(["data.batch_size=64", "world.rdzv_id=123", "env.A=1", "args=[x, y]"]),
    ])
    assert config.world.nprocs == 3 and config.seed == 1 and config.data.batch_size == 64
    assert config.world.rdzv_id == "123" and config.env == {"A": "1"} and config.args == ["x", "y"]
    assert config.world.master_addr == "10.0.0.1"
    assert config.world.shutdown_timeout == WorldSettings().shutdown_timeout  # untouched keys keep defaults


@pytest.mark.parametrize(
    ("assignment", "fragment"),
    [
        ("world.nprocs=four", "--set world.nprocs=four: world.nprocs: expected"),
        ("world.nprocz=2", "--set world.nprocz=2: world.nprocz: unknown key (did you mean 'nprocs'?)"),
        ("nokey", "--set nokey: expected key.sub=value"),
        ("world.shutdown_timeout=-1", "world.shutdown_timeout: must be >= 0"),
    ],
)
def test_bad_overrides(assignment, fragment):
    with pytest.raises(ConfigError) as caught:
        build_config([override_layer([assignment])])
    assert fragment in str(caught.value)


def test_flag_errors_name_the_flag():
    with pytest.raises(ConfigError, match=r"--nproc_per_node: world\.nprocs: must be >= 1"):
        build_config([flag_layer({"world.nprocs": (0, "--nproc_per_node")})])


def test_paths_resolve_against_the_yaml_folder(tmp_path):
    (tmp_path / "jobs").mkdir()
    path = _yaml(tmp_path / "jobs", "entrypoint: sub/train.py:main\nlogs: {dir: ../runs}\n")
    config = build_config([read_yaml_layer(path)])
    assert config.entrypoint == f"{tmp_path / 'jobs' / 'sub' / 'train.py'}:main"
    assert Path(str(config.logs.dir)).resolve() == (tmp_path / "runs").resolve()


@pytest.mark.parametrize("entry", ["pkg.train:main", "-m pkg.train"])
def test_module_entrypoints_are_not_paths(tmp_path, entry):
    config = build_config([read_yaml_layer(_yaml(tmp_path, f"entrypoint: {entry}\n"))])
    assert config.entrypoint == entry


def test_script_entrypoint_resolves(tmp_path):
    config = build_config([read_yaml_layer(_yaml(tmp_path, "entrypoint: train.py\n"))])
    assert config.entrypoint == str(tmp_path / "train.py")


def test_api_configs_are_validated_the_same_way():
    check_job(JobConfig())
    with pytest.raises(ConfigError, match=r"world\.nprocs: must be >= 1"):
        check_job(JobConfig(world=WorldSettings(nprocs=0)))


def test_layer_base_only_applies_to_its_own_values(tmp_path):
    yaml_layer = read_yaml_layer(_yaml(tmp_path, "entrypoint: t.py\nlogs: {dir: here}\n"))
    config = build_config([yaml_layer, Layer({"logs": {"dir": "there"}}, {}, "--log-dir")])
    assert config.logs.dir == "there"  # flags are relative to the working directory, not the file
