"""The output router on its own: no FIFO outlives its stream."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from launcher.plan.model import OutputPlan
from launcher.protocol import PIPE_NAMES
from launcher.supervise.output import OutputRouter

pytestmark = pytest.mark.timeout(30)


def _fifos(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if stat.S_ISFIFO(path.lstat().st_mode))


def test_the_fifos_of_a_rank_that_never_connected_go_with_its_attempt_and_at_the_end(tmp_path: Path) -> None:
    router = OutputRouter(OutputPlan(console_ranks=None, hidden=frozenset(), write_files=False, nprocs=1))
    first, second = tmp_path / "attempt_0" / "0", tmp_path / "attempt_1" / "0"
    first.mkdir(parents=True), second.mkdir(parents=True)
    try:
        router.attach(0, 0, str(first))
        assert _fifos(tmp_path) == sorted(f"attempt_0/0/{name}" for name in PIPE_NAMES.values())
        router.attach(0, 0, str(second))  # a restart: the rank never opened the first attempt's FIFOs
        assert _fifos(tmp_path) == sorted(f"attempt_1/0/{name}" for name in PIPE_NAMES.values())
    finally:
        router.close()
    assert _fifos(tmp_path) == []

