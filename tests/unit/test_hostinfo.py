"""Host facts: CUDA_VISIBLE_DEVICES read as CUDA reads it (one reader for plan and preflight)."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.hostinfo import installed_gpu_count, visible_devices

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(("setting", "installed", "devices", "ignored"), [
    (None, 2, ("0", "1"), None),  # unset: every installed GPU
    ("1,0", 2, ("1", "0"), None),  # order kept
    ("0,5", 2, ("0",), "5"),  # CUDA stops at the first index that does not exist
    ("0,-1,1", 4, ("0",), "-1"),
    ("", 4, (), None),
    ("-1", 4, (), "-1"),
    ("GPU-1a2b, MIG-3c4d", 1, ("GPU-1a2b", "MIG-3c4d"), None),  # UUIDs and MIG names count as given
    ("0,1", 0, (), None),  # no driver, no GPU
    ("0,0", 2, ("0", "0"), None),
])
def test_visible_devices(setting: str | None, installed: int, devices: tuple[str, ...], ignored: str | None) -> None:
    seen = visible_devices(setting, installed)
    assert (seen.devices, seen.ignored, seen.count) == (devices, ignored, len(devices))
    assert seen.duplicated == (len(set(devices)) != len(devices))


def test_installed_gpus_are_the_drivers_entries(tmp_path: Path) -> None:
    for bus in ("0000:01:00.0", "0000:02:00.0"):
        (tmp_path / bus).mkdir()
    assert installed_gpu_count(tmp_path) == 2
    assert installed_gpu_count(tmp_path / "absent") == 0
