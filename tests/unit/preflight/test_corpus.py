"""The source checks on a corpus of training scripts from public repositories (``corpus/cases.yaml``).

Each case is judged the way ``launcher check ENTRY`` judges it (``run_static_checks``; the host checks
are skipped), once per judgement below, and must get exactly the labelled verdicts: every labelled
mistake reported by its check, with its status, at one of its lines; a clean case, no WARN or FAIL from
the source checks; a script that runs correctly on Linux, no FAIL there. The labels come from reading the
scripts (see the header of cases.yaml), never from the checker's output.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from launcher.platforms import choose_start_method
from launcher.preflight.checks import StaticInputs, run_static_checks
from launcher.preflight.findings import CHECKS, Finding

pytestmark = pytest.mark.timeout(60)

CORPUS = Path(__file__).resolve().parent / "corpus"
CASES: list[dict[str, Any]] = yaml.safe_load((CORPUS / "cases.yaml").read_text())["cases"]
SOURCE_CHECKS = ("main-guard", "pickle", "cuda-fork")
HOST_CHECKS = frozenset({"gpus", "port", "paths", "threads"})


@dataclass(frozen=True)
class Judgement:
    platform: str  # whose start methods decide: the launcher's own choice and the script's default
    status_key: str  # the label that holds the expected status


# One entry per way a script is judged. "spawn" is judged as macOS judges it (the launcher's workers and the
# script's own processes spawned); a dedicated spawn judgement on Linux (`launcher check --as spawn`) belongs here
# as one more entry, or in place of that one, with the same labels.
JUDGEMENTS = {
    "linux": Judgement("linux", "status_linux"),
    "spawn": Judgement("darwin", "status_spawn"),
}


def judge(case: dict[str, Any], judgement: Judgement) -> list[Finding]:
    """The findings ``launcher check`` prints for the case's entry (host checks left out)."""
    folder = CORPUS / case["id"]
    module = case.get("module")
    inputs = StaticInputs(
        platform=judgement.platform,
        start_method=choose_start_method("auto", judgement.platform, {}, {}).method,
        backend="gloo",
        nprocs=2,
        usable_cpus=2,
        cwd=folder,
        script=None if module else Path(case["entry"]),
        module=module,
        skip=HOST_CHECKS,
    )
    return run_static_checks(inputs)


def place(finding: Finding, folder: Path) -> tuple[Path, int] | None:
    """The file (resolved) and line a finding points at, or None when it names no place."""
    if ":" not in finding.where:
        return None
    name, _, line = finding.where.rpartition(":")
    path = Path(name)
    if not path.is_absolute():
        path = path if (Path.cwd() / path).exists() else folder / path
    return (Path.cwd() / path).resolve(), int(line)


def problems(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.check in SOURCE_CHECKS and f.status != "pass"]


def shown(findings: list[Finding]) -> str:
    return "\n".join(f"  {f.check} {f.status.upper()} {f.where}: {f.message}" for f in findings) or "  (none)"


@pytest.mark.parametrize("judged", sorted(JUDGEMENTS))
@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_corpus_case(case: dict[str, Any], judged: str) -> None:
    judgement = JUDGEMENTS[judged]
    folder = CORPUS / case["id"]
    findings = judge(case, judgement)
    reported = problems(findings)
    for mistake in case["mistakes"]:
        expected = mistake[judgement.status_key]
        target = (folder / mistake["file"]).resolve()
        at_mistake = [
            f for f in reported
            if f.check == mistake["check"] and place(f, folder) in {(target, line) for line in mistake["lines"]}
        ]  # fmt: skip
        where = f"{mistake['file']}:{mistake['lines']}"
        if expected == "pass":
            assert not at_mistake, f"{mistake['check']} at {where}: expected nothing ({mistake['why']}), got\n" + shown(
                at_mistake
            )
        else:
            assert any(f.status == expected for f in at_mistake), (
                f"{mistake['check']} {expected.upper()} expected at {where}: {mistake['why']}\nreported:\n"
                + shown(reported)
            )
    if not case["mistakes"]:
        assert not reported, "a clean script got findings:\n" + shown(reported)
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
    assert os.sep not in "".join(c["id"] for c in CASES)
