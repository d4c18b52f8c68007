"""``launcher.rlimits``: the host's limits as read for the plan; raising and giving back the open-files limit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from launcher import rlimits

resource = pytest.importorskip("resource")


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize("cgroup_files", [
    {"pids.max": "4096\n", "pids.current": "37\n"},  # cgroup v2
    {"pids/pids.max": "4096\n", "pids/pids.current": "37\n"},  # v1's pids controller
])
def test_the_host_limits_are_read(tmp_path: Path, cgroup_files: dict[str, str]) -> None:
    proc = _tree(tmp_path / "proc", {"loadavg": "0.50 0.40 0.30 3/812 4242\n", "sys/kernel/pid_max": "32768\n",
                                     "sys/kernel/threads-max": "63000\n"})
    limits = rlimits.host_limits(proc, _tree(tmp_path / "cgroup", cgroup_files))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert (limits.open_files_soft, limits.open_files_hard) == (soft, None if hard == resource.RLIM_INFINITY else hard)
    assert (limits.pid_max, limits.threads_max, limits.tasks_running) == (32768, 63000, 812)
    assert (limits.cgroup_pids_max, limits.cgroup_pids_current) == (4096, 37)


def test_what_cannot_be_read_is_unknown(tmp_path: Path) -> None:
    cgroup = _tree(tmp_path / "cgroup", {"pids.max": "max\n", "pids.current": "5\n"})
    limits = rlimits.host_limits(tmp_path / "no-proc", cgroup)
    assert limits.pid_max is limits.threads_max is limits.tasks_running is limits.cgroup_pids_max is None


@pytest.fixture
def low_soft_limit() -> Iterator[int]:
    """This process's soft open-files limit lowered for the test (the hard one must be higher), then restored."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(soft, 256)
    if hard != resource.RLIM_INFINITY and hard <= low:
        pytest.skip(f"the hard open-files limit ({hard}) leaves nothing to raise")
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
    try:
        yield low
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_raised_to_the_hard_limit_and_given_back(low_soft_limit: int) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        assert rlimits.raise_open_files() is None  # no finite hard limit to raise to: unchanged
        return
    assert rlimits.raise_open_files() == low_soft_limit
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    assert rlimits.raise_open_files() is None  # already there
    rlimits.restore_open_files(low_soft_limit)
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (low_soft_limit, hard)
    with rlimits.open_files_raised():
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == low_soft_limit
    rlimits.restore_open_files(None)  # the user's limit unknown: nothing changes
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == low_soft_limit
