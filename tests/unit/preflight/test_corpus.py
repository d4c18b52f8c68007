"""The source checks on a corpus of training scripts from public repositories (``corpus/cases.yaml``).

Each case is judged the way ``launcher check ENTRY`` judges it, once per judgement (``corpus_cases``),
and must get exactly the labelled verdicts: every labelled mistake reported by its check, with its
status, at one of its lines; a clean case, no WARN or FAIL from the source checks; a script that runs
correctly on Linux, no FAIL there. The labels come from reading the scripts (see the header of
cases.yaml), never from the checker's output.
"""

from __future__ import annotations

from typing import Any

import pytest

from launcher.preflight.findings import CHECKS
from tests.unit.preflight.corpus_cases import (
    CORPUS,
    JUDGEMENTS,
    SOURCE_CHECKS,
    at_mistake,
    judge,
    load_cases,
    problems,
    shown,
)

pytestmark = pytest.mark.timeout(60)

CASES = load_cases()


@pytest.mark.parametrize("judged", sorted(JUDGEMENTS))
@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_corpus_case(case: dict[str, Any], judged: str) -> None:
    judgement = JUDGEMENTS[judged]
    findings = judge(case, judgement)
    for mistake in case["mistakes"]:
        expected = mistake[judgement.status_key]
        found = at_mistake(findings, case, mistake)
        where = f"{mistake['file']}:{mistake['lines']}"
        if expected == "pass":
            assert not found, f"{mistake['check']} at {where}: nothing expected ({mistake['why']}):\n" + shown(found)
        else:
            assert any(f.status == expected for f in found), (
                f"{mistake['check']} {expected.upper()} expected at {where}: {mistake['why']}\nreported:\n"
                + shown(problems(findings))
            )
    if not case["mistakes"]:
        assert not problems(findings), "a clean script got findings:\n" + shown(problems(findings))
    if judged == "linux" and case["runs_on_linux"]:
        failed = [f for f in findings if f.status == "fail"]
        assert not failed, "a script that runs correctly on Linux would be blocked:\n" + shown(failed)


def test_corpus_table_is_complete() -> None:
    """Every case names its source and its entry; every label points at a real line; every folder is listed."""
    assert len(CASES) >= 50
    assert len({c["id"] for c in CASES}) == len(CASES)
    assert {c["id"] for c in CASES} == {p.name for p in CORPUS.iterdir() if p.is_dir()}
    for case in CASES:
        folder = CORPUS / case["id"]
        assert (folder / case["entry"]).is_file(), case["id"]
        assert len(case["commit"]) == 40 and int(case["commit"], 16) >= 0, case["id"]
        assert case["origin"] in ("verbatim", "snippet", "reduced"), case["id"]
        assert case["url"].startswith("https://github.com/"), case["id"]
        assert isinstance(case["runs_on_linux"], bool), case["id"]
        for mistake in case["mistakes"]:
            assert mistake["check"] in CHECKS and mistake["check"] in SOURCE_CHECKS, case["id"]
            assert mistake["status_linux"] in ("warn", "fail"), case["id"]
            assert mistake["status_spawn"] in ("warn", "fail", "pass"), case["id"]
            assert mistake["status_linux"] != "fail" or not case["runs_on_linux"], case["id"]
            lines = (folder / mistake["file"]).read_text().splitlines()
            assert mistake["lines"] and all(1 <= n <= len(lines) for n in mistake["lines"]), case["id"]
