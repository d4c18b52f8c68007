"""``launcher bench-data``: reads the job file, measures, writes the pick; bad input is a ConfigError."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.cli import bench_data
from launcher.errors import ConfigError

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("no_leftover_children")]


class Items:
    def __len__(self) -> int:
        return 64

    def __getitem__(self, i: int) -> int:
        return i


def make_items() -> Items:
    return Items()


def test_main_reads_the_job_file_and_writes_the_pick(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = tmp_path / "train.yaml"
    job.write_text("data:\n  batch_size: 4  # per rank\n")
    spec = f"{__name__}:make_items"
    code = bench_data.main(
        [str(job), "--dataset", spec, "--workers", "0", "--batches", "2", "--repeats", "1", "--write"]
    )
    assert code == 0
    assert "best: num_workers=0" in capsys.readouterr().out
    assert job.read_text() == "data:\n  batch_size: 4  # per rank\n  num_workers: 0\n"


def test_main_without_a_dataset_is_a_config_error(tmp_path: Path) -> None:
    job = tmp_path / "train.yaml"
    job.write_text("data:\n  batch_size: 4\n")
    with pytest.raises(ConfigError, match="no dataset"):
        bench_data.main([str(job)])
