"""The package as users install it: a wheel built from this tree carries the presets and runs from anywhere."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from launcher.hostinfo import usable_cpus

pytestmark = pytest.mark.timeout(180)

REPO = Path(__file__).resolve().parents[2]
RUN_FROM_WHEEL = """
import sys
sys.path.insert(0, sys.argv[1])
import launcher
assert launcher.__file__.startswith(sys.argv[1]), launcher.__file__  # the wheel's copy, not this checkout
from launcher.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a copy of the sources (the checkout stays clean), unpacked as pip would install it."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "launcher", source / "launcher", ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(work / "dist"), str(source)], capture_output=True, text=True, timeout=150)
    assert built.returncode == 0, built.stderr
    (wheel,) = (work / "dist").glob("launcher-*.whl")
    site = work / "site-packages"
    with zipfile.ZipFile(wheel) as archive:
        assert "launcher/config/presets/cpu-local.yaml" in archive.namelist()
        archive.extractall(site)
    return site


def test_a_shipped_preset_works_from_an_installed_wheel(installed_wheel: Path, tmp_path: Path) -> None:
    (tmp_path / "t.py").write_text("print('never run')\n")  # a folder with no cluster_configs/ of its own
    ran = subprocess.run([sys.executable, "-c", RUN_FROM_WHEEL, str(installed_wheel), "--cluster", "cpu-local",
                          "--dry-run", "t.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert f"{usable_cpus()} process(es) per node" in ran.stdout  # the preset's nprocs: cpu


def test_an_unknown_preset_lists_the_shipped_ones(installed_wheel: Path, tmp_path: Path) -> None:
    (tmp_path / "t.py").write_text("print('never run')\n")
    ran = subprocess.run([sys.executable, "-c", RUN_FROM_WHEEL, str(installed_wheel), "--cluster", "cpu-locl",
                          "--dry-run", "t.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 2 and "cpu-local, single-node-gpus, two-node" in ran.stderr
