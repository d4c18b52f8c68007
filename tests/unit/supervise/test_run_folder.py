"""Each run's folder under the log dir: new every time, named by start time and run id."""

from __future__ import annotations

import os
import time

import pytest

from launcher.errors import ConfigError
from launcher.plan.model import run_folder_name
from launcher.supervise.run_folder import make_run_folder

STARTED = time.mktime((2026, 11, 30, 23, 59, 58, 0, 0, -1))


def test_the_name_is_the_start_time_then_the_run_id_made_safe_for_a_file_name():
    assert run_folder_name("exp1", STARTED) == "20261130-235958-exp1"
    assert run_folder_name("../a b/c", STARTED) == "20261130-235958-a_b_c"
    assert run_folder_name("..", STARTED) == "20261130-235958-run"
    assert run_folder_name("exp1", None) == "<YYYYmmdd-HHMMSS>-exp1"


def test_a_name_taken_in_the_same_second_gets_a_number_and_nothing_is_reused(tmp_path):
    first = make_run_folder(str(tmp_path / "logs"), "exp1", STARTED)
    (tmp_path / "logs" / "20261130-235958-exp1" / "kept.txt").write_text("earlier run")
    second = make_run_folder(str(tmp_path / "logs"), "exp1", STARTED)
    third = make_run_folder(str(tmp_path / "logs"), "exp1", STARTED)
    assert [os.path.basename(p) for p in (first, second, third)] == [
        "20261130-235958-exp1", "20261130-235958-exp1-2", "20261130-235958-exp1-3"]
    assert (tmp_path / "logs" / "20261130-235958-exp1" / "kept.txt").read_text() == "earlier run"
    assert os.listdir(second) == [] and os.listdir(third) == []


def test_a_log_dir_that_cannot_be_made_is_one_config_error(tmp_path):
    (tmp_path / "afile").write_text("not a folder")
    with pytest.raises(ConfigError, match=r"logs.dir: cannot create a run folder in .*afile/logs"):
        make_run_folder(str(tmp_path / "afile" / "logs"), "exp1", STARTED)
