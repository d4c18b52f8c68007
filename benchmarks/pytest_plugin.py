"""The pytest plugin (``launcher.testing``) against torch's ``MultiProcessTestCase``: five 2-rank tests.

The same five trivial tests (one all_reduce over 2 gloo ranks each), as a
``@pytest.mark.distributed`` file (``jobs/pytest_plugin_cases.py``) and as a
``MultiProcessTestCase`` file (``jobs/pytest_mptc_cases.py``), each run with
``python -m pytest FILE`` from a clean folder, interleaved. Figures: the whole
file, from the command's start until it exited and every process it started was
gone; and each test's own time from pytest's JUnit XML (the median over runs of
the tests after the first, which also pays for the plugin's server). Targets:
the plugin file at most 0.1x the ``MultiProcessTestCase`` file; each test after
the first at most 100 ms (median). ``MultiProcessTestCase`` needs ``expecttest``.

A third file, the same five tests without a process group (``jobs/pytest_floor_cases.py``: one tensor op
each), is the floor of both: a pytest process that imports torch. Its ratio to the ``MultiProcessTestCase``
file is the best any plugin running the tests from that process can reach on the machine; the plugin's own
cost is its file minus the floor.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.common import (
    PYTHON,
    Variant,
    expect_success,
    interleave,
    job,
    markdown_table,
    ratio,
    run_benchmark_main,
    run_job,
    summary,
    verdict,
)

NAME = "pytest_plugin"
FILE_TARGET = 0.1
TEST_TARGET_MS = 100.0
SIDES = {
    "plugin": ("pytest_plugin_cases.py", ("-p", "launcher.testing")),
    "MultiProcessTestCase": ("pytest_mptc_cases.py", ()),
    "floor": ("pytest_floor_cases.py", ()),  # no process group: pytest and import torch
}
TIMEOUT_S = 300.0


@dataclass(frozen=True)
class FileRun:
    seconds: float  # the whole command, until every process it started is gone
    tests: tuple[float, ...]  # each test's time (JUnit XML), in the order run


def run_file(side: str) -> FileRun:
    """One ``python -m pytest`` of the side's file, copied into a fresh folder (no ini file, no conftest)."""
    name, options = SIDES[side]
    with tempfile.TemporaryDirectory(prefix="launcher-bench-pytest-") as folder:
        shutil.copy(job(name), os.path.join(folder, "test_cases.py"))
        report = os.path.join(folder, "report.xml")
        cmd = [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options, f"--junitxml={report}",
               "test_cases.py"]
        run = expect_success(run_job(cmd, cwd=folder, timeout=TIMEOUT_S), " ".join(cmd))
        tests = tuple(float(case.get("time", "nan")) for case in ElementTree.parse(report).iter("testcase"))
    if len(tests) != 5:
        raise RuntimeError(f"{side}: expected 5 tests in the JUnit XML, found {len(tests)}:\n{run.output[-2000:]}")
    return FileRun(run.seconds, tests)


def measure(runs: int) -> dict[str, Any]:
    kept = interleave([Variant(side, lambda side=side: run_file(side), runs) for side in SIDES],  # type: ignore[misc]
                      "pytest files")
    data: dict[str, Any] = {"commands": {side: ["python", "-m", "pytest", *SIDES[side][1], SIDES[side][0]]
                                         for side in SIDES}}
    for side, side_runs in kept.items():
        later = [seconds for run in side_runs for seconds in run.tests[1:]]
        data[side] = {"file": summary([run.seconds for run in side_runs]),
                      "first_test": summary([run.tests[0] for run in side_runs]),
                      "later_tests": summary(later)}
    plugin, anchor, floor = data["plugin"], data["MultiProcessTestCase"], data["floor"]
    data["file_ratio"] = ratio(plugin["file"]["median"], anchor["file"]["median"])
    data["floor_ratio"] = ratio(floor["file"]["median"], anchor["file"]["median"])
    data["plugin_over_floor_s"] = plugin["file"]["median"] - floor["file"]["median"]
    data["later_test_ms"] = plugin["later_tests"]["median"] * 1000
    data["met"] = {"file": data["file_ratio"] <= FILE_TARGET, "test": data["later_test_ms"] <= TEST_TARGET_MS}
    return data


def render(data: dict[str, Any]) -> str:
    plugin, anchor = data["plugin"], data["MultiProcessTestCase"]
    rows = [
        ["whole file (5 tests), s", plugin["file"]["median"], anchor["file"]["median"],
         f"{data['file_ratio']:.3f}x", f"≤ {FILE_TARGET}x", verdict(data["met"]["file"])],
        ["first test, s", plugin["first_test"]["median"], anchor["first_test"]["median"],
         f"{ratio(plugin['first_test']['median'], anchor['first_test']['median']):.3f}x", "", ""],
        ["each later test, ms (median)", f"{data['later_test_ms']:.0f}",
         f"{anchor['later_tests']['median'] * 1000:.0f}",
         f"{ratio(plugin['later_tests']['median'], anchor['later_tests']['median']):.3f}x",
         f"≤ {TEST_TARGET_MS:.0f} ms", verdict(data["met"]["test"])],
    ]
    head = (f"pytest plugin vs MultiProcessTestCase: medians of {plugin['file']['runs']} runs per side (first "
            "run dropped, interleaved); the file until every process was gone; tests from the JUnit XML.")
    table = markdown_table(["case", "plugin", "MultiProcessTestCase", "ratio", "target", ""], rows)
    spread = (f"Later tests with the plugin: min {plugin['later_tests']['min'] * 1000:.0f} ms, "
              f"max {plugin['later_tests']['max'] * 1000:.0f} ms over {plugin['later_tests']['runs']} tests; "
              f"whole plugin file min {plugin['file']['min']:.3f} s, max {plugin['file']['max']:.3f} s.")
    floor = (f"Floor (the same tests without a process group: pytest and import torch): "
             f"{data['floor']['file']['median']:.3f} s, {data['floor_ratio']:.3f}x the MultiProcessTestCase file; "
             f"the plugin's own cost over it: {data['plugin_over_floor_s']:.3f} s for 5 tests.")
    return f"{head}\n\n{table}\n\n{spread}\n\n{floor}"


def main(argv: Sequence[str] | None = None) -> int:
    return run_benchmark_main(NAME, __doc__.splitlines()[0], measure, render, argv)


if __name__ == "__main__":
    sys.exit(main())
