"""Parallelism mistakes a reader of the script's AST can see: ``nn.DataParallel`` in a job of several
processes, and CUDA called from functions that run in helper threads.

- ``data-parallel``: a ``DataParallel(...)`` call (``nn.DataParallel``, ``torch.nn.DataParallel``, or the
  name imported, aliases followed) while the launch starts more than one process per node: every process
  would drive every visible GPU from one Python thread. Use DistributedDataParallel, one GPU per process.
- ``thread-cuda``: ``torch.cuda.*`` (but the queries ``is_available``/``device_count``/``is_initialized``),
  ``.cuda()`` or a ``"cuda"`` device argument in the body of a function handed to a thread:
  ``pool.submit(fn)``/``pool.map(fn, ...)`` on a name bound to a ``ThreadPoolExecutor``/``ThreadPool``,
  ``Thread(target=fn)``, or the runtime's ``map_in_threads(fn, ...)``. A helper
  thread does not share the training thread's current device and stream, and in a DataLoader worker it
  touches CUDA in a forked child.

Warnings only, and only when found (no pass row). Deliberate limits: functions are found by name among
the file's ``def``s (or an inline lambda), the submitted function's own body is read (not what it calls),
and pool names are tracked file-wide, not per scope. Never imports torch or the user's code.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from launcher.preflight.files import display
from launcher.preflight.findings import Finding

FIX_DATA_PARALLEL = ("use DistributedDataParallel with one GPU per process (the launcher starts them: "
                     "docs/data-parallel.md), or launch one process")
FIX_THREAD_CUDA = ("keep helper threads to CPU work (decode, augment, numpy) and move tensors to the GPU in "
                   "the training thread (docs/preprocessing.md)")

_THREAD_POOLS = {"concurrent.futures.ThreadPoolExecutor", "concurrent.futures.thread.ThreadPoolExecutor",
                 "multiprocessing.pool.ThreadPool", "multiprocessing.dummy.Pool"}
_THREAD_MAPPER = "launcher.runtime.data.preprocess.map_in_threads"
_POOL_METHODS = {"submit", "map", "imap", "imap_unordered", "apply_async", "map_async", "starmap"}
_CUDA_QUERIES = {"is_available", "device_count", "is_initialized"}
_CUDA_DEVICE = re.compile(r"cuda(:\d+)?")  # "cuda", "cuda:1" as a device argument


@dataclass(frozen=True)
class ThreadCuda:
    line: int  # where the function is handed to a thread
    function: str
    cuda_line: int
    cuda: str  # "torch.cuda.synchronize", ".cuda()"


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local names bound by imports → the dotted names they stand for."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    names[alias.name.split(".")[0]] = alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """``nn.DataParallel`` → ``torch.nn.DataParallel`` through the file's imports; None if not a dotted name."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([aliases.get(node.id, node.id), *reversed(parts)])


def data_parallel_lines(tree: ast.AST) -> list[int]:
    """Lines of ``DataParallel(...)`` calls (not DistributedDataParallel)."""
    aliases = _aliases(tree)
    return sorted(node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call)
                  and (_dotted(node.func, aliases) or "").split(".")[-1] == "DataParallel")


def _is_cuda_device(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and bool(_CUDA_DEVICE.fullmatch(node.value))


def _cuda_uses(function: ast.AST, aliases: dict[str, str]) -> list[tuple[int, str]]:
    uses = []
    for node in ast.walk(function):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func, aliases) or ""
        if name.startswith("torch.cuda.") and name.split(".")[2] not in _CUDA_QUERIES:
            uses.append((node.lineno, name))
        elif isinstance(node.func, ast.Attribute) and node.func.attr == "cuda":
            uses.append((node.lineno, ".cuda()"))
        elif any(_is_cuda_device(value) for value in [*node.args, *(k.value for k in node.keywords
                                                                     if k.arg == "device")]):
            uses.append((node.lineno, "a 'cuda' device"))
    return sorted(uses)


def _thread_pool_names(tree: ast.AST, aliases: dict[str, str]) -> set[str]:
    """Names bound to a thread pool: ``pool = ThreadPoolExecutor(...)``, ``with ThreadPool() as pool``."""
    names = set()
    for node in ast.walk(tree):
        pairs: list[tuple[ast.AST, ast.AST | None]] = []
        if isinstance(node, ast.Assign):
            pairs = [(node.value, target) for target in node.targets]
        elif isinstance(node, ast.With):
            pairs = [(item.context_expr, item.optional_vars) for item in node.items]
        for value, target in pairs:
            if (isinstance(value, ast.Call) and isinstance(target, ast.Name)
                    and _dotted(value.func, aliases) in _THREAD_POOLS):
                names.add(target.id)
    return names


def _submitted(node: ast.Call, aliases: dict[str, str], pools: set[str]) -> ast.AST | None:
    """The function this call hands to a helper thread, if it is one of the known ways."""
    name = _dotted(node.func, aliases) or ""
    if name == "threading.Thread":
        return next((k.value for k in node.keywords if k.arg == "target"), None)
    if name == _THREAD_MAPPER or (isinstance(node.func, ast.Attribute) and node.func.attr in _POOL_METHODS
                                   and isinstance(node.func.value, ast.Name) and node.func.value.id in pools):
        return node.args[0] if node.args else None
    return None


def thread_cuda_uses(tree: ast.AST) -> list[ThreadCuda]:
    """Functions handed to helper threads whose own body calls CUDA (the first such call each)."""
    aliases = _aliases(tree)
    pools = _thread_pool_names(tree, aliases)
    defs = {node.name: node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        target = _submitted(node, aliases, pools)
        body: ast.AST
        if isinstance(target, ast.Lambda):
            body, label = target, "a lambda"
        elif isinstance(target, ast.Name) and target.id in defs:
            body, label = defs[target.id], target.id
        else:
            continue
        uses = _cuda_uses(body, aliases)
        if uses:
            found.append(ThreadCuda(node.lineno, label, *uses[0]))
    return sorted(found, key=lambda item: item.line)


def parallel_findings(tree: ast.AST, where: str, nprocs: int, skip: frozenset[str] = frozenset()) -> list[Finding]:
    """The ``data-parallel`` and ``thread-cuda`` warnings for one parsed file (``where``: how it is named)."""
    findings = []
    if nprocs > 1 and "data-parallel" not in skip:
        findings += [Finding("data-parallel", "warn", f"{where}:{line}",
                             f"DataParallel in each of {nprocs} processes: every process drives every visible "
                             "GPU from one thread", FIX_DATA_PARALLEL) for line in data_parallel_lines(tree)]
    if "thread-cuda" not in skip:
        findings += [Finding("thread-cuda", "warn", f"{where}:{use.line}",
                             f"{use.function} runs in a helper thread and calls {use.cuda} (line {use.cuda_line})",
                             FIX_THREAD_CUDA) for use in thread_cuda_uses(tree)]
    return findings


def check_parallel(source_path: Path, nprocs: int, skip: frozenset[str] = frozenset()) -> list[Finding]:
    """``parallel_findings`` for a source file; nothing for one that cannot be read or parsed (``target``
    reports that)."""
    try:
        tree = ast.parse(source_path.read_text(encoding="utf-8", errors="replace"), filename=str(source_path))
    except (OSError, SyntaxError, ValueError):
        return []
    return parallel_findings(tree, display(source_path), nprocs, skip)
