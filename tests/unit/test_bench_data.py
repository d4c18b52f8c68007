"""bench-data's engine: the comment-keeping YAML edit (golden file), the grid, and a tiny real sweep."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from launcher.bench import data_sweep
from launcher.bench.data_sweep import LoaderSetting, grid, run_sweep, updated_yaml, write_best
from launcher.errors import ConfigError

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("no_leftover_children")]

GOLDEN = Path(__file__).parent / "golden"


def test_write_best_keeps_comments_and_order(tmp_path: Path) -> None:
    job = tmp_path / "train.yaml"
    job.write_text((GOLDEN / "bench_write_best.in.yaml").read_text())
    written = write_best(job, LoaderSetting(8, prefetch_factor=4, persistent_workers=True))
    assert written == {"num_workers": 8, "prefetch_factor": 4, "persistent_workers": True}
    assert job.read_text() == (GOLDEN / "bench_write_best.out.yaml").read_text()


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


def test_grid_has_one_no_worker_point_per_pin_value() -> None:
    points = grid([0, 2], [2, 4], [False, True], [None])
    assert points[0] == LoaderSetting(0)
    assert len(points) == 1 + 4 and len(set(points)) == len(points)
    assert LoaderSetting(0).data_values() == {"num_workers": 0}


class Items:
    def __len__(self) -> int:
        return 64

    def __getitem__(self, i: int) -> int:
        return i


def make_items() -> Items:
    return Items()


def test_a_tiny_sweep_reports_every_setting_and_the_fastest_as_best() -> None:
    seen: list[int] = []
    result = run_sweep(
        Items(),
        batch_size=4,
        workers=[0, 1],
        prefetch=[2],
        persistent=[True],
        batches=4,
        repeats=2,
        full=True,
        progress=lambda done, total, label: seen.append(done),
    )
    assert {r.setting.num_workers for r in result.results} == {0, 1}
    assert result.best == max(result.results, key=lambda r: r.batches_per_second)
    assert result.baseline is not None and result.baseline.setting.num_workers == 0
    assert all(r.runs == 2 for r in result.results)
    assert seen == list(range(1, 7))  # (2 kept + 1 warm-up round) x 2 settings
    table = data_sweep.render_table(result)
    assert table.count("\n") == 3 and "(best)" in table


def test_main_reads_the_job_file_and_writes_the_pick(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = tmp_path / "train.yaml"
    job.write_text("data:\n  batch_size: 4  # per rank\n")
    spec = f"{__name__}:make_items"
    code = data_sweep.main(
        [str(job), "--dataset", spec, "--workers", "0", "--batches", "2", "--repeats", "1", "--write"]
    )
    assert code == 0
    assert "best: num_workers=0" in capsys.readouterr().out
    assert job.read_text() == "data:\n  batch_size: 4  # per rank\n  num_workers: 0\n"


def test_main_without_a_dataset_is_a_config_error(tmp_path: Path) -> None:
    job = tmp_path / "train.yaml"
    job.write_text("data:\n  batch_size: 4\n")
    with pytest.raises(ConfigError, match="no dataset"):
        data_sweep.main([str(job)])
