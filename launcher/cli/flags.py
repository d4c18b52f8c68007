"""The command-line flags: torchrun 2.13's, in both spellings, plus the launcher's own.

Each flag maps to one dotted key of the job schema, so flags, YAML and
``--set`` meet in one config path (``launcher.config.job.load_job``). A torchrun flag the
launcher does not implement is rejected by name, never silently ignored.
Values not given on the command line come from torchrun's ``PET_*`` variables.
Never imports torch.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from launcher.config.request import JobRequest
from launcher.errors import EXIT_CODES, UsageError
from launcher.preflight.findings import CHECKS


@dataclass(frozen=True)
class Flag:
    names: tuple[str, ...]  # as torchrun spells them; the first long name gives PET_<DEST>
    dest: str
    key: str | None  # dotted schema key; None for flags handled by the CLI itself
    kind: str = "value"  # "value" or "switch"
    convert: Callable[[str], Any] = str
    help: str = ""
    torchrun: bool = True
    unsupported: str = ""  # non-empty: rejected with this reason when given
    instead: str = ""  # for an unsupported flag: what to use instead, if anything
    group: str = ""  # the --help section of a supported torchrun flag (see GROUPS)


def _nprocs(text: str) -> int | str:
    return int(text) if text.strip().isdigit() else text.strip()


def _rdzv_conf(text: str) -> dict[str, str]:
    pairs = [item for item in text.split(",") if item.strip()]
    conf = {}
    for item in pairs:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--rdzv-conf {text}: expected key=value pairs", "e.g. --rdzv-conf timeout=60,is_host=1")
        conf[key.strip()] = value.strip()
    return conf


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"expected an integer, got {text!r}", "pass a whole number") from None


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"expected a number, got {text!r}", "pass a number of seconds") from None


def _both(name: str) -> tuple[str, ...]:
    return (name, "--" + name[2:].replace("-", "_")) if "-" in name[2:] else (name,)


# The sections of --help, in order; torchrun's own sections first.
WORKERS = "workers and nodes (torchrun)"
RENDEZVOUS = "rendezvous (torchrun)"
TARGET = "what to run (torchrun)"
LOGS = "logs and console (torchrun)"
OWN = "the launcher's own"
PLAN = "plan and checks"
UNSUPPORTED = "torchrun flags not supported yet (rejected when given)"
GROUPS = (WORKERS, RENDEZVOUS, TARGET, LOGS, OWN, PLAN, UNSUPPORTED)


FLAGS: tuple[Flag, ...] = (
    Flag(("--nnodes",), "nnodes", "world.nnodes", help="number of nodes, or MIN:MAX", group=WORKERS),
    Flag(_both("--nproc-per-node"), "nproc_per_node", "world.nprocs", convert=_nprocs,
         help="processes per node: N, auto, cpu or gpu", group=WORKERS),
    Flag(_both("--rdzv-backend"), "rdzv_backend", "world.rdzv_backend", help="rendezvous backend (static, c10d)",
         group=RENDEZVOUS),
    Flag(_both("--rdzv-endpoint"), "rdzv_endpoint", "world.rdzv_endpoint", help="rendezvous host:port",
         group=RENDEZVOUS),
    Flag(_both("--rdzv-id"), "rdzv_id", "world.rdzv_id", help="job id shared by all nodes", group=RENDEZVOUS),
    Flag(_both("--rdzv-conf"), "rdzv_conf", "world.rdzv_conf", convert=_rdzv_conf, help="key=value,...",
         group=RENDEZVOUS),
    Flag(("--standalone",), "standalone", "world.standalone", kind="switch", help="single node, local store",
         group=RENDEZVOUS),
    Flag(_both("--max-restarts"), "max_restarts", "world.max_restarts", convert=_int,
         help="restarts after a failure", group=WORKERS),
    Flag(_both("--monitor-interval"), "monitor_interval", "world.monitor_interval", convert=_float,
         help="longest wait between checks of the workers (seconds)", group=WORKERS),
    Flag(_both("--start-method"), "start_method", "world.start_method",
         help="auto, spawn, forkserver or fork (default auto: see the README)", group=WORKERS),
    Flag(_both("--event-log-handler"), "event_log_handler", None, unsupported="elastic event log handlers"),
    Flag(("--role",), "role", "world.role", help="role name of the workers", group=WORKERS),
    Flag(("-m", "--module"), "module", None, kind="switch", help="run TARGET as a module (python -m)", group=TARGET),
    Flag(_both("--no-python"), "no_python", None, kind="switch", unsupported="running a binary without python",
         instead="call the binary from a Python script (subprocess)"),
    Flag(_both("--run-path"), "run_path", None, kind="switch",
         help="accepted for compatibility: scripts always run through runpy in the worker", group=TARGET),
    Flag(_both("--log-dir"), "log_dir", "logs.dir", help="keep per-rank stdout/stderr files here", group=LOGS),
    Flag(("-r", "--redirects"), "redirects", "logs.redirects", help="0-3, or local_rank:value,...", group=LOGS),
    Flag(("-t", "--tee"), "tee", "logs.tee", help="0-3, or local_rank:value,...", group=LOGS),
    Flag(_both("--local-ranks-filter"), "local_ranks_filter", "logs.local_ranks_filter",
         help="local ranks shown on the console, e.g. 0 or 0,2", group=LOGS),
    Flag(_both("--duplicate-stdout-filters"), "duplicate_stdout_filters", None, unsupported="duplicate output filters",
         instead="--log-dir keeps every rank's whole output in files"),
    Flag(_both("--duplicate-stderr-filters"), "duplicate_stderr_filters", None, unsupported="duplicate output filters",
         instead="--log-dir keeps every rank's whole output in files"),
    Flag(_both("--node-rank"), "node_rank", "world.node_rank", convert=_int, help="rank of this node", group=WORKERS),
    Flag(_both("--master-addr"), "master_addr", "world.master_addr", help="address of node 0 (static rendezvous)",
         group=RENDEZVOUS),
    Flag(_both("--master-port"), "master_port", "world.master_port", convert=_int,
         help="port of node 0 (default: a free port on one node, 29500 on several)", group=RENDEZVOUS),
    Flag(_both("--local-addr"), "local_addr", "world.local_addr", help="address of this node", group=RENDEZVOUS),
    Flag(_both("--logs-specs"), "logs_specs", None, unsupported="custom LogsSpecs plugins",
         instead="--log-dir, --redirects and --tee"),
    Flag(_both("--numa-binding"), "numa_binding", None, unsupported="NUMA binding",
         instead="numactl in front of the launcher binds all workers to the same NUMA nodes"),
    Flag(_both("--signals-to-handle"), "signals_to_handle", "world.signals_to_handle",
         help="signals forwarded to the workers", group=WORKERS),
    Flag(_both("--shutdown-timeout"), "shutdown_timeout", "world.shutdown_timeout", convert=_float,
         help="grace period between SIGTERM and SIGKILL (seconds, default 3)", group=WORKERS),
    Flag(_both("--virtual-local-rank"), "virtual_local_rank", None, kind="switch",
         unsupported="virtual local ranks (CUDA_VISIBLE_DEVICES is never rewritten per rank)"),
    # The launcher's own.
    Flag(("--nprocs",), "nprocs", "world.nprocs", convert=_nprocs, torchrun=False,
         help="same as --nproc-per-node"),
    Flag(("--backend",), "backend", "world.backend", torchrun=False, help="auto, nccl or gloo"),
    Flag(("--seed",), "seed", "seed", convert=_int, torchrun=False, help="seed python, numpy and torch on every rank"),
    Flag(("--cluster",), "cluster", "cluster", torchrun=False, help="a preset YAML merged under the job"),
    Flag(("--hang-timeout",), "hang_timeout", "monitor.hang_timeout", convert=_float, torchrun=False,
         help="stop the job (exit 124) with every rank's stacks when a rank makes no progress for S seconds"),
    Flag(("--hang-startup",), "hang_startup", "monitor.hang_startup", convert=_float, torchrun=False,
         help="seconds allowed for start-up before the hang watchdog applies (default 5 x --hang-timeout)"),
    Flag(("--progress",), "progress", "monitor.progress", torchrun=False,
         help="rank 0's progress: auto (a bar on a terminal, a line every 30 s otherwise), bar, lines or off"),
    Flag(("--quiet",), "quiet", None, kind="switch", torchrun=False,
         help="no progress line; the end-of-run summary only when the run failed"),
    Flag(("--monitor-every",), "monitor_every", "monitor.interval", convert=_float, torchrun=False,
         help="seconds between the monitor's records (default 1)"),
)

class UsageParser(argparse.ArgumentParser):
    """An argparse parser whose mistakes are ``UsageError``s: one line, exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, "see python -m launcher --help")


# The subcommands, as the usage line lists them: name, arguments, what it does.
SUBCOMMAND_USAGE: tuple[tuple[str, str, str], ...] = (
    ("check", "[options] TARGET", "every preflight check as a table; starts nothing"),
    ("sbatch", "JOB.yaml [options]", "write or submit the job's SLURM batch script"),
    ("bench-data", "JOB.yaml [options]", "measure DataLoader settings for the job's dataset"),
    ("report", "RUN_DIR [options]", "a run directory's metrics as a picture and a short summary"),
)


def usage() -> str:
    """The launch line, one line per subcommand (each has its own --help), and --version."""
    lines = ["python -m launcher [options] TARGET [target args...]"]
    width = max(len(f"{name} {args}") for name, args, _ in SUBCOMMAND_USAGE)
    lines += [f"python -m launcher {f'{name} {args}'.ljust(width)}   {what}" for name, args, what in SUBCOMMAND_USAGE]
    lines.append("python -m launcher --version")
    return "\n       ".join(lines)


def exit_codes_epilog() -> str:
    """The exit-code table of ``launcher.errors``, as the end of --help."""
    width = max(len(code) for code, _ in EXIT_CODES)
    return "exit codes:\n" + "\n".join(f"  {code.ljust(width)}  {meaning}" for code, meaning in EXIT_CODES)


def version_text() -> str:
    """The installed launcher's version, and torch's, read without importing torch."""
    from importlib import metadata

    from launcher.platforms import installed_torch_version

    try:
        version = metadata.version("launcher")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        version = "(not installed)"
    torch = installed_torch_version()
    return f"launcher {version} (torch {torch or 'not installed'}, Python {sys.version.split()[0]})"


class _VersionAction(argparse.Action):
    """``--version``: computed only when asked, so that parsing stays as fast as before."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        del namespace, values, option_string  # argparse's signature; nothing to store
        print(version_text())
        parser.exit()


def _add_flag(group: argparse._ArgumentGroup, flag: Flag) -> None:
    """One flag; torchrun's underscore spelling is accepted but left out of --help."""
    shown = tuple(name for name in flag.names if "_" not in name)
    hidden = tuple(name for name in flag.names if "_" in name)
    text = flag.help
    if flag.unsupported:
        text = f"not supported yet: {flag.unsupported}" + (f"; instead: {flag.instead}" if flag.instead else "")
    kind: dict[str, Any] = {"action": "store_true"} if flag.kind == "switch" else {}
    group.add_argument(*shown, dest=flag.dest, default=None, help=text, **kind)
    if hidden:
        group.add_argument(*hidden, dest=flag.dest, default=None, help=argparse.SUPPRESS, **kind)


def _section(flag: Flag) -> str:
    if flag.unsupported:
        return UNSUPPORTED
    return flag.group if flag.torchrun else OWN


def build_parser() -> argparse.ArgumentParser:
    parser = UsageParser(
        prog="launcher",
        description="Start and supervise a distributed PyTorch job (torchrun-compatible).\n"
        "torchrun's flags keep their meaning; their underscore spellings (--nproc_per_node) are accepted too.",
        usage=usage(),
        epilog=exit_codes_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action=_VersionAction, nargs=0, help="print the launcher's and torch's version")
    groups = {name: parser.add_argument_group(name) for name in GROUPS}
    for flag in FLAGS:
        _add_flag(groups[_section(flag)], flag)
    groups[OWN].add_argument("--set", dest="set", action="append", default=[], metavar="KEY=VALUE",
                             help="override any job key, e.g. --set data.batch_size=64")
    groups[PLAN].add_argument("--dry-run", dest="dry_run", action="store_true", help="print the plan, start nothing")
    groups[PLAN].add_argument("--skip-check", dest="skip_check", action="append", default=[], metavar="NAME",
                              help="skip one preflight check (repeatable): " + ", ".join(CHECKS))
    parser.add_argument("training_script", nargs="?", metavar="TARGET",
                        help="script.py, -m module, pkg.module:function, file.py:function or job.yaml")
    parser.add_argument("training_script_args", nargs=argparse.REMAINDER, metavar="...")
    return parser


@dataclass(frozen=True)
class ParsedFlags:
    """What the command line said: the job (target, schema values with their flag names, overrides),
    and the CLI's own switches."""

    job: JobRequest
    skip_checks: tuple[str, ...]
    dry_run: bool
    quiet: bool = False  # no progress line (monitor.progress: off), the end-of-run summary only on failure


def _given(namespace: argparse.Namespace, argv: Sequence[str]) -> dict[str, str]:
    """dest → the option string the user wrote, for flags present in argv."""
    spelled: dict[str, str] = {}
    for flag in FLAGS:
        for token in argv:
            name = token.split("=", 1)[0]
            if name in flag.names and getattr(namespace, flag.dest) is not None:
                spelled.setdefault(flag.dest, name)
    return spelled


def parse_flags(argv: Sequence[str], environ: Mapping[str, str]) -> ParsedFlags:
    """Parse launcher options and the target; YAML targets may be followed by more options.

    For a script or module everything after TARGET is the target's (torchrun's
    rule). For a .yaml job, options may follow the file and everything after
    ``--`` is appended to the job's ``args``. A ``--`` before TARGET ends the
    options, as in torchrun: ``--nprocs 2 -- train.py args``.
    """
    argv = list(argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    head, passthrough = argv[:cut], argv[cut + 1 :]
    parser = build_parser()
    namespace = parser.parse_args(head)
    target = namespace.training_script
    rest = list(namespace.training_script_args or [])
    options = head[: len(head) - len(rest) - (1 if target else 0)]
    if target is None and passthrough:  # ``-- TARGET args``: everything after TARGET is the target's
        target, rest = passthrough[0], passthrough[1:]
    elif target and target.lower().endswith((".yaml", ".yml")):
        extra = parser.parse_args(rest)
        if extra.training_script is not None:
            raise UsageError(
                f"unexpected argument {extra.training_script!r} after {target}",
                "options may follow a .yaml job; put the job's own arguments after --",
            )
        for flag in FLAGS:
            if getattr(extra, flag.dest) is not None:
                setattr(namespace, flag.dest, getattr(extra, flag.dest))
        namespace.set = [*namespace.set, *extra.set]
        namespace.skip_check = [*namespace.skip_check, *extra.skip_check]
        namespace.dry_run = namespace.dry_run or extra.dry_run
        options += rest
        rest = passthrough
    elif cut < len(argv) and target:
        rest = [*rest, "--", *passthrough]
    spelled = _given(namespace, options)
    values: dict[str, tuple[Any, str]] = {}
    module = False
    for flag in FLAGS:
        raw = getattr(namespace, flag.dest)
        origin = spelled.get(flag.dest, flag.names[-1] if flag.names[-1].startswith("--") else flag.names[0])
        if raw is None and flag.torchrun:
            env_name = f"PET_{flag.dest.upper()}"
            if env_name in environ:
                raw = environ[env_name] if flag.kind == "value" else _env_switch(environ[env_name])
                origin = env_name
        if raw is None or raw is False:
            continue
        if flag.unsupported:
            raise UsageError(f"{origin}: {flag.unsupported} is not supported by this launcher yet",
                             f"remove {origin}; " + (f"instead: {flag.instead}" if flag.instead
                                                     else "the README lists the differences from torchrun"))
        if flag.dest == "module":
            module = True
            continue
        if flag.key is None:
            continue
        value = True if flag.kind == "switch" else flag.convert(raw)
        if flag.key in values and values[flag.key][0] != value:
            raise UsageError(f"{values[flag.key][1]} and {origin} disagree",
                             "give the number of processes once (--nprocs and --nproc-per-node are the same)")
        values[flag.key] = (value, origin)
    if namespace.quiet:
        if values.get("monitor.progress", ("off",))[0] != "off":
            raise UsageError(f"--quiet and {values['monitor.progress'][1]} disagree", "give one of them")
        values["monitor.progress"] = ("off", "--quiet")
    job = JobRequest(target, module, tuple(rest), values, tuple(namespace.set))
    return ParsedFlags(job, tuple(namespace.skip_check), bool(namespace.dry_run), bool(namespace.quiet))


def _env_switch(text: str) -> bool:
    try:
        return int(text) != 0
    except ValueError:
        return bool(text)
