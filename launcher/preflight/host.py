"""Checks of host facts the launch relies on: rendezvous host, master port, paths, GPUs, threads.

Pure functions of explicit inputs (the port check binds on the given host, never
connects anywhere). Never imports torch or the user's code.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from collections.abc import Collection, Mapping
from pathlib import Path

from launcher.config.job import SHIPPED_PRESETS
from launcher.hints import FIX_PORT
from launcher.hostinfo import GpuVisibility
from launcher.network import Resolution
from launcher.preflight.findings import Finding, ok

_FLAG_OF = {"world.rdzv_endpoint": "--rdzv-endpoint", "world.master_addr": "--master-addr"}


def check_rendezvous_host(found: Resolution | None, key: str, origin: str) -> list[Finding]:
    """The host every node meets at must resolve here: else torch retries its connect for minutes, warning.

    ``key`` is the setting that names the host, ``origin`` where it was set ("two-node.yaml:7", a flag).
    One node (``found`` None): nothing to look up, no finding.
    """
    if found is None:
        return []
    if found.addresses:
        return [ok("rendezvous", f"{key}: {found.host} resolves to {', '.join(found.addresses[:3])}")]
    path, sep, line = origin.rpartition(":")
    in_file = bool(sep and line.isdigit())
    what = f"{key}: {found.host}" if in_file or not origin else found.host
    message = f"{what} does not resolve on this host: {found.problem}"
    flag = _FLAG_OF.get(key, key)
    first = "the first node's host name or address"
    if not in_file:  # a flag, a PET_* variable, --set, or nothing (a default)
        fix = f"give {origin or flag} {first}, one that every node resolves"
    elif Path(path).parent == SHIPPED_PRESETS:
        fix = (f"{found.host} is a placeholder in the shipped {Path(path).stem} preset: add {flag} with {first}, "
               f"or copy {Path(path).name} to cluster_configs/ and edit it there")
    else:
        fix = f"replace {found.host} in {Path(path).name} line {line} with {first}, or override it with {flag}"
    return [Finding("rendezvous", "warn" if found.timed_out else "fail", origin, message, fix)]


def check_port(host: str, port: int | None, platform: str | None = None) -> Finding:
    """A user-given master port already taken on ``host`` (a bind test there; never a connect)."""
    if port is None:
        return ok("port", "no master port given: a free one is chosen at launch")
    if not 0 < port < 65536:
        return Finding("port", "fail", "", f"master port {port} is out of range", "use a port in 1024..65535")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as e:
        return Finding(
            "port", "fail", "", f"master address {host!r} does not resolve ({e})", "fix master_addr"
        )
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        if (platform or sys.platform) != "win32":
            # Like the TCPStore: a port in TIME_WAIT from the last run is free, a listener is not.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as e:
            if e.errno == errno.EADDRINUSE or getattr(e, "winerror", None) == 10048:
                return Finding(
                    "port", "fail", "", f"master port {port} is already in use on {host}", FIX_PORT
                )
            if e.errno == errno.EADDRNOTAVAIL:
                return ok("port", f"{host} is not this machine: port {port} is checked there")
            return Finding("port", "warn", "", f"cannot test port {port} on {host}: {e.strerror}", FIX_PORT)
    return ok("port", f"master port {port} is free on {host}")


def check_paths(paths: Mapping[str, str], cwd: Path, *, writable: Collection[str] = ()) -> list[Finding]:
    """Paths the workers cannot read (or write, for keys in ``writable``); relative ones resolve against ``cwd``.

    A missing input is only a warning: the job may create or download it.
    """
    findings: list[Finding] = []
    for key, raw in paths.items():
        path = Path(raw).expanduser()
        target = path if path.is_absolute() else cwd / path
        if key in writable:  # a folder the job writes into (made if missing)
            existing = next((p for p in (target, *target.parents) if p.exists()), None)
            if existing is not None and not existing.is_dir():
                findings.append(Finding("paths", "fail", "", f"{key}: {existing} is a file, not a folder",
                                        "choose a folder you can write"))
            elif existing is None or not os.access(existing, os.W_OK):
                findings.append(
                    Finding(
                        "paths",
                        "fail",
                        "",
                        f"{key}: {target} is not writable",
                        "choose a folder you can write",
                    )
                )
        elif not target.exists():
            findings.append(
                Finding(
                    "paths",
                    "warn",
                    "",
                    f"{key}: {target} does not exist",
                    "check the path (or create it first)",
                )
            )
        elif not os.access(target, os.R_OK):
            findings.append(
                Finding("paths", "fail", "", f"{key}: {target} is not readable", "fix its permissions")
            )
    return findings or [ok("paths", f"{len(paths)} path(s) resolve where the workers run")]


def check_gpus(backend: str, nprocs: int, gpus: GpuVisibility) -> Finding:
    """NCCL needs one GPU per local process; CUDA_VISIBLE_DEVICES must agree with nprocs.

    ``gpus`` is what CUDA will give the workers (``hostinfo.visible_devices``, the
    reading the plan chose its backend and process count from).
    """
    cvd = gpus.setting
    if backend == "nccl" and gpus.duplicated:
        message = f"CUDA_VISIBLE_DEVICES={cvd} names a GPU twice: NCCL rejects duplicate GPUs"
        return Finding("gpus", "fail", "", message, "list each GPU once")
    if backend == "nccl":
        if gpus.count == 0:
            message = "backend nccl needs CUDA GPUs and none is visible"
            return Finding("gpus", "fail", "", message, "use backend: gloo")
        if nprocs > gpus.count:
            message = f"{nprocs} nccl processes but {gpus.count} visible GPU(s): NCCL needs one GPU per process"
            return Finding("gpus", "fail", "", message, f"use --nprocs {gpus.count} or backend: gloo")
    if gpus.ignored is not None and gpus.ignored != "-1":
        message = (f"CUDA_VISIBLE_DEVICES={cvd}: GPU {gpus.ignored} does not exist here; "
                   "CUDA ignores it and what follows")
        return Finding("gpus", "warn", "", message, "use indices of installed GPUs (nvidia-smi -L lists them)")
    if cvd is not None and 0 < gpus.count < nprocs:
        message = f"CUDA_VISIBLE_DEVICES={cvd} gives {gpus.count} GPU(s) to {nprocs} processes"
        return Finding("gpus", "warn", "", message, f"list {nprocs} GPUs or use --nprocs {gpus.count}")
    return ok("gpus", f"{backend}: {nprocs} process(es), {gpus.count} GPU(s) visible")


def check_threads(user_omp_num_threads: str | None, local_procs: int, usable_cpus: int) -> Finding:
    """Oversubscription from an OMP_NUM_THREADS the user set (the launcher's own default is safe)."""
    if user_omp_num_threads is None:
        return ok("threads", "OMP_NUM_THREADS is chosen by the launcher")
    first = user_omp_num_threads.split(",")[0].strip()
    if not first.isdigit() or int(first) < 1:
        message = f"OMP_NUM_THREADS={user_omp_num_threads!r} is not a positive integer"
        return Finding("threads", "warn", "", message, "set OMP_NUM_THREADS to a number such as 1")
    total = int(first) * local_procs
    if total > usable_cpus:
        fair = max(1, usable_cpus // max(1, local_procs))
        message = f"OMP_NUM_THREADS={first} x {local_procs} processes = {total} threads on {usable_cpus} CPUs"
        return Finding("threads", "warn", "", message, f"set OMP_NUM_THREADS={fair} (or unset it)")
    return ok("threads", f"{total} threads on {usable_cpus} CPUs")
