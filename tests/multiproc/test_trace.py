"""The launch profile's marks (launcher.trace): every process of a launch writes its own steps when asked."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)


def _marks(folder: Path) -> dict[str, set[str]]:
    """label → the files (one per process) that hold it."""
    found: dict[str, set[str]] = defaultdict(set)
    for file in folder.glob("marks-*.tsv"):
        for line in file.read_text().splitlines():
            _, _, label = line.split("\t", 2)
            found[label].add(file.stem)
    return found


def test_every_process_of_a_launch_marks_its_steps(tmp_path: Path, launcher) -> None:  # type: ignore[no-untyped-def]
    marks = tmp_path / "marks"
    marks.mkdir()
    ran = launcher(["--nprocs", 2, "env_dump.py", tmp_path / "out"], env={"LAUNCHER_TRACE_DIR": str(marks)})
    assert ran.returncode == 0, ran.stderr
    found = _marks(marks)
    the_launcher = found["launcher: prepare start"]
    assert len(the_launcher) == 1 and found["launcher: run_plan end"] == the_launcher
    assert len(found["worker: run_worker start"]) == 2 and len(found["worker: run_worker end"]) == 2
    assert found["agent: rendezvous end"] and found["agent: start workers end"] and found["agent: run end"]
    if os.environ.get("PET_START_METHOD") == "spawn":  # the agent runs in the launcher; no server
        assert found["agent: rendezvous end"] == the_launcher and not found["server: preload done"]
        assert len(set().union(*found.values())) == 3
    else:  # the launcher, the server, the agent's process, two workers
        assert found["server: preload done"] and found["agent: host_agent start"] != the_launcher
        assert len(set().union(*found.values())) == 5
