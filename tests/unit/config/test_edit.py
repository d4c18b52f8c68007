"""Writing into a job file's data: section: comments, order and formatting kept (golden file)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from launcher.config.edit import updated_yaml, write_data_values
from launcher.errors import ConfigError

pytestmark = pytest.mark.timeout(30)

GOLDEN = Path(__file__).parent / "golden"


def test_writing_keeps_comments_and_order(tmp_path: Path) -> None:
    job = tmp_path / "train.yaml"
    job.write_text((GOLDEN / "write_data.in.yaml").read_text())
    write_data_values(job, {"num_workers": 8, "prefetch_factor": 4, "persistent_workers": True})
    assert job.read_text() == (GOLDEN / "write_data.out.yaml").read_text()


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("seed: 1\n", "seed: 1\ndata:\n  num_workers: 0\n"),
        ("seed: 1", "seed: 1\ndata:\n  num_workers: 0\n"),
        ("data:\nseed: 1\n", "data:\n  num_workers: 0\nseed: 1\n"),
        ("data:\n    num_workers: 'auto'  # q\n", "data:\n    num_workers: 0  # q\n"),
        ("data:\n  batch_size: 4", "data:\n  batch_size: 4\n  num_workers: 0\n"),
        ("", "data:\n  num_workers: 0\n"),
    ],
)
def test_minimal_edits(before: str, after: str) -> None:
    assert updated_yaml(before, {"num_workers": 0}) == after
    assert yaml.safe_load(after)["data"]["num_workers"] == 0


def test_flow_style_data_is_refused_with_a_hint() -> None:
    with pytest.raises(ConfigError, match="block mapping"):
        updated_yaml("data: {batch_size: 4}\n", {"num_workers": 2})
