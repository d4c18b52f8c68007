"""Libraries that detect a torchrun launch (Ignite, Accelerate, Lightning Fabric) work unchanged."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.timeout(180)


@pytest.mark.parametrize("library", ["ignite", "accelerate", "fabric"])
def test_library_sees_the_launch(library, tmp_path, launcher):
    ran = launcher(["--nprocs", 2, "compat_libs.py", library, tmp_path], timeout=150)
    assert ran.returncode == 0, ran.stderr
    seen = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(2)]
    assert [s["rank"] for s in seen] == [0, 1]
    assert all(s["world_size"] == 2 and s["total"] == 2.0 for s in seen)
    if library == "fabric":
        assert seen[0]["environment"] == "TorchElasticEnvironment"
