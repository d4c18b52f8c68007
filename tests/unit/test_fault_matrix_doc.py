"""docs/faults.md documents the fault matrix that tests/multiproc/test_fault_matrix.py runs: the same rows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.multiproc.test_fault_matrix import FAULTS

pytestmark = pytest.mark.timeout(30)

DOC = Path(__file__).resolve().parents[2] / "docs" / "faults.md"
HEADER = ["case", "launcher arguments", "start methods", "exit code", "root cause", "processes left", "files left"]


def documented_rows(markdown: str) -> list[list[str]]:
    """The cells of the table whose header is HEADER, backticks removed."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if _cells(line) == HEADER)
    rows = []
    for line in lines[start + 2:]:  # past the header and its |---| line
        if not line.startswith("|"):
            break
        rows.append([cell.strip("`") for cell in _cells(line)])
    return rows


def _cells(line: str) -> list[str]:
    """A table line's cells; ``\\|`` is a ``|`` inside a cell."""
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def test_the_documented_matrix_is_the_tested_one() -> None:
    tested = [[row.case, row.args, ", ".join(row.methods), str(row.code), row.label, "0", "none"] for row in FAULTS]
    assert documented_rows(DOC.read_text()) == tested


def test_every_case_is_named_once() -> None:
    cases = [row.case for row in FAULTS]
    assert len(cases) == len(set(cases))
