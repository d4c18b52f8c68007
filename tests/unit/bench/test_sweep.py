"""bench-data's engine: the grid, and a tiny real sweep."""

from __future__ import annotations

import pytest

from launcher.bench.sweep import LoaderSetting, grid, render_table, run_sweep

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("no_leftover_children")]


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
    assert seen == list(range(1, 7))  # (2 kept + 1 warm-up round) x 2 settings
    table = render_table(result)
    assert table.count("\n") == 3 and "(best)" in table
