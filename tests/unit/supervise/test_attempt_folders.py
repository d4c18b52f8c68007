"""An attempt's log folder survives a rendezvous that re-forms without a restart (a node joined)."""

from __future__ import annotations

from pathlib import Path

from launcher.supervise.agent import RunLogsSpecs


def _envs(restart: int) -> dict[int, dict[str, str]]:
    return {rank: {"RANK": str(rank), "TORCHELASTIC_RUN_ID": "job", "TORCHELASTIC_RESTART_COUNT": str(restart)}
            for rank in range(2)}


def test_a_round_with_the_same_attempt_number_keeps_the_earlier_rounds_files(tmp_path: Path) -> None:
    specs = RunLogsSpecs(str(tmp_path), None)
    first = specs.reify(_envs(0))
    Path(first.error_files[0]).write_text("first round")
    specs.reify(_envs(0))  # re-formed to admit a node: elastic starts attempt 0 again
    specs.reify(_envs(0))
    assert (tmp_path / "attempt_0.1" / "0" / "error.json").read_text() == "first round"
    assert (tmp_path / "attempt_0.2" / "0").is_dir()
    assert not (tmp_path / "attempt_0" / "0" / "error.json").exists()  # the newest round's folder, fresh
    assert (tmp_path / "attempt_0" / "1").is_dir()


def test_a_restart_gets_a_folder_of_its_own_and_moves_nothing(tmp_path: Path) -> None:
    specs = RunLogsSpecs(str(tmp_path), None)
    Path(specs.reify(_envs(0)).error_files[1]).write_text("attempt 0")
    specs.reify(_envs(1))
    assert (tmp_path / "attempt_0" / "1" / "error.json").read_text() == "attempt 0"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["attempt_0", "attempt_1"]
