"""The result of a preflight check, how ``launcher check`` prints it, and how it stops a launch.

Plain data and text; never imports torch or the user's code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from launcher.errors import PreflightError

# Every check, in table order, with one line on what it catches: the single source for
# ``launcher check --help``, ``--skip-check`` and its help.
CHECK_DESCRIPTIONS: dict[str, str] = {
    "target": "the script, module or function to run exists and parses",
    "main-guard": 'no process starts at import time, outside `if __name__ == "__main__":`',
    "pickle": "no lambda or local function is sent to another process (DataLoader workers, pools, spawn)",
    "cuda-fork": "CUDA is not initialised before a fork whose children use it",
    "data-parallel": "no nn.DataParallel in a job of several processes (DDP instead: docs/data-parallel.md)",
    "thread-cuda": "no torch.cuda call in a function handed to a thread pool (threads never touch CUDA)",
    "gpus": "the GPUs visible match the backend and the number of processes",
    "rendezvous": "the rendezvous host of a multi-node job resolves on this host",
    "port": "the master port is free",
    "paths": "the paths the job reads and writes exist or can be created",
    "threads": "OMP_NUM_THREADS does not oversubscribe the CPUs",
}
CHECKS = tuple(CHECK_DESCRIPTIONS)
Status = Literal["pass", "warn", "fail"]


@dataclass(frozen=True)
class Finding:
    check: str  # one of CHECKS
    status: Status
    where: str  # "train.py:12" or ""
    message: str  # one line: what is wrong (or what was checked)
    fix: str  # one line: what to change ("" when nothing to change)


def ok(check: str, message: str, where: str = "") -> Finding:
    """A passing finding: what was checked."""
    return Finding(check, "pass", where, message, "")


def with_way_out(finding: Finding) -> Finding:
    """A failing finding whose fix ends with how to launch anyway (``or --skip-check NAME``)."""
    if finding.status != "fail" or finding.fix.endswith(f"--skip-check {finding.check}"):
        return finding
    way_out = f"--skip-check {finding.check}"
    return replace(finding, fix=f"{finding.fix}; or {way_out}" if finding.fix else f"or {way_out}")


def failures(findings: Sequence[Finding]) -> list[Finding]:
    return [f for f in findings if f.status == "fail"]


def preflight_error(findings: Sequence[Finding]) -> PreflightError | None:
    """The error that stops a launch (first failure, its fix as the hint), or None."""
    failed = failures(findings)
    if not failed:
        return None
    first = failed[0]
    where = f"{first.where}: " if first.where else ""
    more = f" (+{len(failed) - 1} more: run `launcher check`)" if len(failed) > 1 else ""
    return PreflightError(f"{first.check}: {where}{first.message}{more}", first.fix)


def render_table(findings: Sequence[Finding]) -> str:
    """The ``launcher check`` table: check, status, file:line, what is wrong and the one-line fix."""
    head = ("check", "status", "where", "finding")
    rows = [(f.check, f.status.upper(), f.where or "-", f.message) for f in findings]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(3)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head[:3], widths, strict=True)) + "  " + head[3]]
    for f, row in zip(findings, rows, strict=True):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)) + "  " + row[3])
        if f.fix:
            lines.append(" " * (sum(widths) + 6) + "fix: " + f.fix)
    counts = {s: sum(f.status == s for f in findings) for s in ("fail", "warn", "pass")}
    lines.append(f"{counts['fail']} failed, {counts['warn']} warning(s), {counts['pass']} passed")
    return "\n".join(lines)
