"""Static preflight: judge a launch plan before anything starts, in well under a second.

``run_static_checks`` runs every check from one ``StaticInputs`` (built from the
launch plan and the host facts by ``static_inputs``). The checks live in
``source`` (target, main guard, pickling, CUDA before fork; AST facts from
``scan``) and ``host`` (port, paths, GPUs, threads); ``findings`` holds their
result type, the ``launcher check`` table and the error that stops a launch.

Never imports torch or the user's code.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from launcher.errors import UsageError
from launcher.hostinfo import GpuVisibility, HostFacts
from launcher.network import Resolution
from launcher.plan.model import LaunchPlan
from launcher.preflight.findings import CHECKS, Finding, with_way_out
from launcher.preflight.host import check_gpus, check_paths, check_port, check_rendezvous_host, check_threads
from launcher.preflight.parallel import check_parallel
from launcher.preflight.signature import check_call
from launcher.preflight.source import check_cuda_fork, check_lambdas, check_main_guard
from launcher.preflight.target import check_target
from launcher.targets import ModuleTarget, ScriptTarget


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
    args: tuple[str, ...] = ()  # the target's arguments (a function's positional ones)
    kwargs: Mapping[str, object] = field(default_factory=dict)  # a function's keyword arguments
    gpus: GpuVisibility = field(default_factory=lambda: GpuVisibility(None, ()))  # what CUDA gives the workers
    rendezvous: Resolution | None = None  # the rendezvous host's look-up (several nodes)
    rendezvous_key: str = ""  # the setting that names it: world.rdzv_endpoint or world.master_addr
    rendezvous_origin: str = ""  # where that was set: "two-node.yaml:7", "--rdzv-endpoint", ...
    master_host: str | None = None
    master_port: int | None = None  # only a port the user gave
    paths: Mapping[str, str] = field(default_factory=dict)  # "data.root" -> "data/train"
    writable: frozenset[str] = frozenset()  # keys of ``paths`` the job writes (logs, checkpoints)
    omp_num_threads: str | None = None  # only a value the user set
    discarded_output: bool = False  # a stream redirected away from the console with no log dir to go to
    skip: frozenset[str] = frozenset()  # check names from --skip-check
    default_method: str | None = None  # replaces the platform's default start method (``check --as``)


def static_inputs(plan: LaunchPlan, facts: HostFacts, skip: frozenset[str] = frozenset(),
                  origins: Mapping[str, str] | None = None) -> StaticInputs:
    """The facts the static checks need, taken from the plan and the host; ``origins``: where each setting came
    from (``Job.origins``)."""
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
    found = facts.rendezvous if facts.rendezvous and facts.rendezvous.host == plan.rendezvous.host else None
    key = "world.master_addr" if plan.rendezvous.backend == "static" else "world.rdzv_endpoint"
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
        args=plan.target_args,
        kwargs=plan.config.kwargs,
        gpus=plan.gpus,
        rendezvous=found,
        rendezvous_key=key,
        rendezvous_origin=(origins or {}).get(key, ""),
        master_host=world.master_addr if world.master_port is not None and world.node_rank == 0 else None,
        master_port=world.master_port if world.node_rank == 0 and plan.rendezvous.backend == "static" else None,
        paths=paths,
        writable=frozenset(paths),
        omp_num_threads=user_threads,
        discarded_output=plan.output.discards,
        skip=skip,
    )


def judged_as(inputs: StaticInputs, method: str | None, platform: str | None) -> StaticInputs:
    """The inputs as another platform or start method would see them (``launcher check --as spawn``).

    ``method`` starts the launcher's workers and replaces the platform default for the
    user's own processes; without it, another platform brings its own default (spawn on
    macOS and Windows). A start method the script names itself is kept.
    """
    platform = platform or inputs.platform
    chosen = method or (inputs.start_method if platform == inputs.platform else "spawn")
    return dataclasses.replace(inputs, platform=platform, start_method=chosen, default_method=method)


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
    if source is not None and inputs.function is not None and target.status == "pass":
        target = check_call(source, target.where, inputs.function, inputs.args, inputs.kwargs) or target
    if "target" not in skip:
        findings.append(target)
    if source is not None:
        for name, check in (
            ("main-guard", check_main_guard),
            ("pickle", check_lambdas),
            ("cuda-fork", check_cuda_fork),
        ):
            if name not in skip:
                findings += check(source, inputs.start_method, inputs.platform, inputs.default_method, inputs.cwd)
        findings += check_parallel(source, inputs.nprocs, skip)  # data-parallel, thread-cuda: warnings only
    if "gpus" not in skip:
        findings.append(check_gpus(inputs.backend, inputs.nprocs, inputs.gpus))
    if "rendezvous" not in skip:
        findings += check_rendezvous_host(inputs.rendezvous, inputs.rendezvous_key, inputs.rendezvous_origin)
    if "port" not in skip:
        findings.append(check_port(inputs.master_host or "127.0.0.1", inputs.master_port, inputs.platform))
    if "paths" not in skip:
        findings += check_paths(inputs.paths, inputs.cwd, writable=inputs.writable)
        if inputs.discarded_output:
            findings.append(Finding("paths", "warn", "", "logs.redirects: the redirected output is not kept: "
                                    "there is no log dir", "add --log-dir DIR to keep it, or use --tee"))
    if "threads" not in skip:
        findings.append(check_threads(inputs.omp_num_threads, inputs.nprocs, inputs.usable_cpus))
    return [with_way_out(f) for f in findings]
