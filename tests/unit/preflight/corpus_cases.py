"""The training-script corpus (``corpus/cases.yaml``) and how a case is judged: shared by the test and the benchmark.

A case is judged the way ``launcher check ENTRY`` judges it (``run_static_checks``; the host checks are
left out), once per judgement in ``JUDGEMENTS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from launcher.platforms import choose_start_method
from launcher.preflight.checks import StaticInputs, judged_as, run_static_checks
from launcher.preflight.findings import Finding

CORPUS = Path(__file__).resolve().parent / "corpus"
SOURCE_CHECKS = ("main-guard", "pickle", "cuda-fork")
HOST_CHECKS = frozenset({"gpus", "port", "paths", "threads"})


@dataclass(frozen=True)
class Judgement:
    platform: str  # whose start methods decide: the launcher's own choice and the script's default
    status_key: str  # the label that holds the expected status
    as_method: str | None = None  # judged as ``launcher check --as METHOD`` on that platform


# One entry per way a script is judged. "spawn" is judged as macOS judges it (the launcher's workers and the
# script's own processes spawned); a dedicated spawn judgement on Linux (`launcher check --as spawn`) belongs here
# as one more entry, or in place of that one, with the same labels.
JUDGEMENTS = {
    "linux": Judgement("linux", "status_linux"),
    "spawn": Judgement("darwin", "status_spawn"),
    "as-spawn": Judgement("linux", "status_spawn", as_method="spawn"),
}


def load_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = yaml.safe_load((CORPUS / "cases.yaml").read_text())["cases"]
    return cases


def judge(case: dict[str, Any], judgement: Judgement) -> list[Finding]:
    """The findings ``launcher check`` prints for the case's entry (host checks left out)."""
    module = case.get("module")
    inputs = StaticInputs(
        platform=judgement.platform,
        start_method=choose_start_method("auto", judgement.platform, {}, {}).method,
        backend="gloo",
        nprocs=2,
        usable_cpus=2,
        cwd=CORPUS / case["id"],
        script=None if module else Path(case["entry"]),
        module=module,
        skip=HOST_CHECKS,
    )
    if judgement.as_method is not None:
        inputs = judged_as(inputs, judgement.as_method, None)
    return run_static_checks(inputs)


def problems(findings: list[Finding]) -> list[Finding]:
    """The WARN and FAIL findings of the source checks."""
    return [f for f in findings if f.check in SOURCE_CHECKS and f.status != "pass"]


def place(finding: Finding, folder: Path) -> tuple[Path, int] | None:
    """The file (resolved) and line a finding points at, or None when it names no place.

    A relative path is taken from the working directory, or else from the case folder.
    """
    if ":" not in finding.where:
        return None
    name, _, line = finding.where.rpartition(":")
    path = Path(name)
    if not path.is_absolute():
        path = Path.cwd() / path if (Path.cwd() / path).exists() else folder / path
    return path.resolve(), int(line)


def at_mistake(findings: list[Finding], case: dict[str, Any], mistake: dict[str, Any]) -> list[Finding]:
    """The WARN/FAIL findings of the mistake's check at one of its labelled lines."""
    folder = CORPUS / case["id"]
    target = (folder / mistake["file"]).resolve()
    places = {(target, line) for line in mistake["lines"]}
    return [f for f in problems(findings) if f.check == mistake["check"] and place(f, folder) in places]


def shown(findings: list[Finding]) -> str:
    return "\n".join(f"  {f.check} {f.status.upper()} {f.where}: {f.message}" for f in findings) or "  (none)"
