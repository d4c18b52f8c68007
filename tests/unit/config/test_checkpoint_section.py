"""The ``checkpoint:`` section: types, ranges, the ``async`` key, paths, and settings that contradict each other."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.config.layers import override_layer, read_yaml_layer
from launcher.config.validate import build_config, check_job
from launcher.errors import ConfigError
from launcher.runtime.checkpoint.checkpointer import checkpoint_settings
from launcher.schema import CheckpointSettings, JobConfig, as_tree

pytestmark = pytest.mark.timeout(30)


def _config(tmp_path: Path, section: str, *overrides: str) -> JobConfig:
    path = tmp_path / "train.yaml"
    path.write_text(f"entrypoint: t.py\ncheckpoint:\n{section}")
    return build_config([read_yaml_layer(path), override_layer(list(overrides))])


@pytest.mark.parametrize(("section", "fragment"), [
    ("  dir: c\n  keep: 0\n", "train.yaml:4: checkpoint.keep: must be >= 1"),
    ("  dir: c\n  every_steps: ten\n", "train.yaml:4: checkpoint.every_steps: expected an integer or null"),
    ("  dir: c\n  every_seconds: 0\n", "train.yaml:4: checkpoint.every_seconds: must be > 0"),
    ("  dir: c\n  async: maybe\n", "train.yaml:4: checkpoint.async: expected true or false"),
    ("  dir: c\n  asynch: true\n", "train.yaml:4: checkpoint.asynch: unknown key (did you mean 'async'?)"),
    ("  every_steps: 5\n", "train.yaml:3: checkpoint.every_steps: is set but checkpoint.dir is not"),
    ("  every_seconds: 60\n", "train.yaml:3: checkpoint.every_seconds: is set but checkpoint.dir is not"),
    ("  dir: [a]\n", "train.yaml:3: checkpoint.dir: expected a string or null"),
])
def test_bad_checkpoint_settings_name_file_line_and_key(tmp_path, section, fragment):
    with pytest.raises(ConfigError) as caught:
        _config(tmp_path, section)
    assert f"{tmp_path}/{fragment}" in str(caught.value), str(caught.value)
    assert caught.value.hint


def test_paths_resolve_against_the_job_file_and_resume_words_stay_words(tmp_path):
    config = _config(tmp_path, "  dir: ckpt\n  async: false\n  every_steps: 10\n")
    assert config.checkpoint == CheckpointSettings(dir=str(tmp_path / "ckpt"), every_steps=10, async_=False)
    assert config.checkpoint.resume == "auto"
    assert _config(tmp_path, "  resume: never\n").checkpoint.resume == "never"
    assert _config(tmp_path, "  resume: old/step-000000100\n").checkpoint.resume == str(tmp_path / "old/step-000000100")


def test_overrides_use_the_job_file_key(tmp_path):
    config = _config(tmp_path, "  dir: c\n", "checkpoint.async=false", "checkpoint.keep=null")
    assert config.checkpoint.async_ is False and config.checkpoint.keep is None


def test_api_configs_with_a_checkpoint_section_are_checked_the_same_way():
    check_job(JobConfig(checkpoint=CheckpointSettings(dir="c", async_=False)))
    assert as_tree(CheckpointSettings())["async"] is True
    with pytest.raises(ConfigError, match=r"checkpoint\.every_steps: is set but checkpoint\.dir is not"):
        check_job(JobConfig(checkpoint=CheckpointSettings(every_steps=3)))


def test_checkpointer_keywords_are_checked_against_the_same_fields():
    settings = checkpoint_settings(CheckpointSettings(), {"dir": "c", "every_steps": 5, "async_": False})
    assert (settings.dir, settings.every_steps, settings.async_) == ("c", 5, False)
    with pytest.raises(ConfigError, match=r"checkpointer\(\): checkpoint.keep: must be >= 1"):
        checkpoint_settings(CheckpointSettings(), {"keep": 0})
    with pytest.raises(ConfigError, match=r"every_step=: unknown keyword \(did you mean every_steps=\?\)"):
        checkpoint_settings(CheckpointSettings(), {"every_step": 5})
    with pytest.raises(ConfigError, match=r"checkpointer\(\): checkpoint.every_steps: is set but checkpoint.dir"):
        checkpoint_settings(CheckpointSettings(), {"every_steps": 5})
