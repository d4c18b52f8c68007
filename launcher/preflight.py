"""Static preflight: judge a launch before anything starts, in well under a second.

``run_static_checks`` runs every check from one ``StaticInputs`` (built by the core
from the launch plan); ``render_table`` prints them for ``launcher check``;
``preflight_error`` turns failures into the exit-2 error; ``known_error_hints`` maps
error texts that slipped through to the same one-line fixes. The checks live in
``sourcechecks`` (target, main guard, pickling, CUDA before fork; AST facts from
``spawnscan``) and ``hostchecks`` (port, paths, GPUs, threads); this module re-exports
them. Checks on live objects live in ``launcher.runtime.spawncheck``.

Never imports torch or the user's code.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from launcher.errors import UsageError
from launcher.findings import CHECKS, Finding, Status, failures, preflight_error, render_table
from launcher.hostchecks import check_gpus, check_paths, check_port, check_threads
from launcher.plan import HostFacts, LaunchPlan
from launcher.runtime.spawncheck import FIX_CUDA_FORK, FIX_GUARD_DEF, FIX_MAIN_GUARD, FIX_PICKLE, FIX_PORT
from launcher.sourcechecks import check_cuda_fork, check_lambdas, check_main_guard, check_target
from launcher.targets import ModuleTarget, ScriptTarget

__all__ = [
    "CHECKS", "Finding", "StaticInputs", "Status", "check_cuda_fork", "check_gpus", "check_lambdas",
    "check_main_guard", "check_paths", "check_port", "check_target", "check_threads", "failures",
    "known_error_hints", "preflight_error", "render_table", "run_static_checks", "static_inputs", "validate_skip",
]  # fmt: skip


@dataclass(frozen=True)
class StaticInputs:
    """Exactly the facts the static checks need; built by the core from the launch plan."""

    platform: str  # "linux" | "darwin" | "win32"
    start_method: str  # the launcher's chosen worker start method (StartMethodChoice.method)
    backend: str  # resolved: "nccl" | "gloo"
    nprocs: int  # processes on this node
    usable_cpus: int
    cwd: Path  # where the launcher runs; relative target paths resolve here
    script: Path | None = None  # the target as a script path, as typed...
    module: str | None = None  # ...or as a module ("pkg.train")
    function: str | None = None  # "main" of "pkg.train:main"
    visible_gpus: int = 0
    cuda_visible_devices: str | None = None  # the value the workers will see, if set
    master_host: str | None = None
    master_port: int | None = None  # only a port the user gave
    paths: Mapping[str, str] = field(default_factory=dict)  # "data.root" -> "data/train"
    writable: frozenset[str] = frozenset()  # keys of ``paths`` the job writes (logs, checkpoints)
    job_dir: Path | None = None  # the workers' working directory when it is not ``cwd``
    omp_num_threads: str | None = None  # only a value the user set
    skip: frozenset[str] = frozenset()  # check names from --skip-check


def static_inputs(plan: LaunchPlan, facts: HostFacts, skip: frozenset[str] = frozenset()) -> StaticInputs:
    """The facts the static checks need, taken from the plan and the host."""
    target = plan.target
    script = module = function = None
    if isinstance(target, ScriptTarget):
        script = Path(target.path)
    elif isinstance(target, ModuleTarget):
        module = target.module
    else:
        function = target.function
        script, module = (Path(target.path), None) if target.path else (None, target.module)
    world, logs = plan.config.world, plan.config.logs
    user_threads = plan.config.env.get("OMP_NUM_THREADS", facts.environ.get("OMP_NUM_THREADS"))
    paths = {"logs.dir": logs.dir} if logs.dir else {}
    return StaticInputs(
        platform=facts.platform,
        start_method=plan.start.method,
        backend=plan.backend,
        nprocs=plan.nprocs,
        usable_cpus=facts.usable_cpus,
        cwd=Path(facts.cwd),
        script=script,
        module=module,
        function=function,
        visible_gpus=facts.visible_gpus,
        cuda_visible_devices=plan.config.env.get("CUDA_VISIBLE_DEVICES", facts.environ.get("CUDA_VISIBLE_DEVICES")),
        master_host=world.master_addr if world.master_port is not None and world.node_rank == 0 else None,
        master_port=world.master_port if world.node_rank == 0 and plan.rendezvous.backend == "static" else None,
        paths=paths,
        writable=frozenset(paths),
        omp_num_threads=user_threads,
        skip=skip,
    )


def validate_skip(names: Iterable[str]) -> frozenset[str]:
    """``--skip-check`` values, checked against ``CHECKS`` (a typo is a UsageError, not a silent no-op)."""
    out = set()
    for name in names:
        if name not in CHECKS:
            close = difflib.get_close_matches(name, CHECKS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "checks: " + ", ".join(CHECKS)
            raise UsageError(f"--skip-check: unknown check {name!r}", hint)
        out.add(name)
    return frozenset(out)


def run_static_checks(inputs: StaticInputs) -> list[Finding]:
    """Every static check, in table order, minus the skipped ones. Never imports the target."""
    skip = inputs.skip
    findings: list[Finding] = []
    target, source = check_target(inputs.script, inputs.module, inputs.function, inputs.cwd)
    if "target" not in skip:
        findings.append(target)
    if source is not None:
        for name, check in (
            ("main-guard", check_main_guard),
            ("pickle", check_lambdas),
            ("cuda-fork", check_cuda_fork),
        ):
            if name not in skip:
                findings += check(source, inputs.start_method, inputs.platform)
    if "gpus" not in skip:
        findings.append(
            check_gpus(inputs.backend, inputs.nprocs, inputs.visible_gpus, inputs.cuda_visible_devices)
        )
    if "port" not in skip:
        findings.append(check_port(inputs.master_host or "127.0.0.1", inputs.master_port, inputs.platform))
    if "paths" not in skip:
        findings += check_paths(inputs.paths, inputs.cwd, inputs.job_dir, writable=inputs.writable)
    if "threads" not in skip:
        findings.append(check_threads(inputs.omp_num_threads, inputs.nprocs, inputs.usable_cpus))
    return findings


_HINTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"before the\s+current process has finished its\s+bootstrapping phase", re.S),
        FIX_MAIN_GUARD,
    ),
    (re.compile(r"Cannot re-initialize CUDA in forked subprocess"), FIX_CUDA_FORK),
    (re.compile(r"Can't get attribute '[^']+' on <module '__(mp_)?main__'"), FIX_GUARD_DEF),
    (re.compile(r"Can't (pickle|get local object)|pickle local object"), FIX_PICKLE),
    (re.compile(r"address already in use|EADDRINUSE|Errno 98|WinError 10048", re.I), FIX_PORT),
)


def known_error_hints(text: str) -> str | None:
    """The one-line fix for a known multiprocessing/port error found in ``text``, or None."""
    for pattern, fix in _HINTS:
        if pattern.search(text):
            return fix
    return None
