"""What a call in a training script is: a loader with workers, a pool, a process, a CUDA use.

``CallReader`` knows the file's import aliases, its ``get_context`` names, its keyword
dicts and its Dataset / DataLoader / Process subclasses; ``scan`` builds on it.
Never imports torch or the user's code.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from launcher.preflight.facts import DEFAULT
from launcher.preflight.syntax import call_arg, canonical, cuda_device_literal, last_name, literal_str, statements
from launcher.preflight.values import Counts, KeywordDicts

_POOLS = {"multiprocessing.Pool", "concurrent.futures.ProcessPoolExecutor"}
# torch.cuda functions that do not initialise CUDA, as torch/cuda reads: seeds and RNG states are queued
# (_lazy_call), memory queries answer {} / 0 before initialisation, empty_cache does nothing then.
# Not here, because they do initialise: get_rng_state(_all), reset_peak_memory_stats, current_device.
_CUDA_NO_INIT = {
    "is_available", "device_count", "is_initialized", "manual_seed", "manual_seed_all", "seed",
    "seed_all", "set_rng_state", "set_rng_state_all", "empty_cache", "memory_allocated",
    "memory_reserved", "max_memory_allocated", "max_memory_reserved", "memory_stats", "memory_summary",
    "memory_cached", "max_memory_cached", "amp", "nvtx",
}  # fmt: skip


@dataclass(frozen=True)
class Loader:
    method: str
    certain: bool  # num_workers is a literal > 0
    workers: bool  # may start workers at all


class CallReader:
    """Classifies the calls of one file; names resolve through its imports."""

    def __init__(self, aliases: dict[str, str], counts: Counts) -> None:
        self.aliases = aliases
        self.counts = counts
        self.contexts: dict[str, str] = {}  # name bound to get_context("x") -> "x"
        self.dicts = KeywordDicts()
        self.cuda_names: set[tuple[str, str]] = set()  # (region, name) holding a CUDA device or tensor/model
        self.dataset_classes: set[str] = set()
        self.loader_classes: set[str] = set()
        self.process_classes: dict[str, str] = {}  # Process subclass -> start method

    def read_classes(self, body: list[ast.stmt]) -> None:
        """The file's Dataset, DataLoader and Process subclasses (module level, in order)."""
        for stmt, _ in statements(body, False):
            if not isinstance(stmt, ast.ClassDef):
                continue
            bases = [(self.resolve(b) or "", b) for b in stmt.bases]
            if any(name.endswith("Dataset") or name in self.dataset_classes for name, _ in bases):
                self.dataset_classes.add(stmt.name)
            if any(name.endswith("DataLoader") or name in self.loader_classes for name, _ in bases):
                self.loader_classes.add(stmt.name)
            for name, node in bases:
                method = self.process_base(name, node)
                if method is not None:
                    self.process_classes[stmt.name] = method

    def resolve(self, node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            return canonical(self.aliases.get(node.id, node.id))
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            return canonical(f"{base}.{node.attr}") if base else None
        return None

    def context_method(self, node: ast.expr | None) -> str | None:
        """The start method of a ``get_context("x")`` call, a name bound to one, or a literal."""
        if node is None:
            return None
        if isinstance(node, ast.Name) and node.id in self.contexts:
            return self.contexts[node.id]
        literal = literal_str(node)
        if literal is not None:
            return literal
        if isinstance(node, ast.Call) and self.resolve(node.func) == "multiprocessing.get_context":
            return literal_str(call_arg(node, "method", 0)) or DEFAULT
        return None

    def process_base(self, name: str, node: ast.expr) -> str | None:
        if name == "multiprocessing.Process" or name in self.process_classes:
            return self.process_classes.get(name, DEFAULT)
        if isinstance(node, ast.Attribute) and node.attr == "Process":
            return self.context_method(node.value)
        return None

    def loader_of(self, call: ast.Call, region: str) -> Loader | None:
        """The loader a call builds: a DataLoader (or subclass), ``ctx.dataloader``, or a ``*Loader``
        given ``num_workers``; None for other calls."""
        func = call.func
        if not last_name(func).endswith(("Loader", "dataloader")) and last_name(func) not in self.loader_classes:
            return None
        what = self.resolve(func) or ""
        is_dataloader = what == "DataLoader" or what.endswith(".DataLoader")
        is_subclass = last_name(func) in self.loader_classes
        is_ctx_loader = isinstance(func, ast.Attribute) and func.attr == "dataloader"
        workers, known = self.workers_arg(call, 5 if is_dataloader else None, region)
        looks_alike = last_name(func).endswith("Loader") and (workers is not None or not known)
        if not (is_dataloader or is_subclass or is_ctx_loader or looks_alike):
            return None
        method = self.context_method(call_arg(call, "multiprocessing_context", None)) or DEFAULT
        if not known:
            return Loader(method, False, workers=True)
        if workers is None:
            return Loader(method, False, workers=is_ctx_loader)  # ctx.dataloader: "auto"
        above_zero = self.counts.positive(workers, region)
        return Loader(method, above_zero is not None, workers=above_zero is not False)

    def workers_arg(self, call: ast.Call, position: int | None, region: str) -> tuple[ast.expr | None, bool]:
        """``num_workers`` as given (directly or in a ``**dict``), and False when a ``**`` cannot be read."""
        explicit = call_arg(call, "num_workers", position)
        if explicit is not None:
            return explicit, True
        for kw in call.keywords:
            if kw.arg is None:
                entries = self.dicts.entries(kw.value, region)
                if entries is None:
                    return None, False
                if "num_workers" in entries:
                    return entries["num_workers"], True
        return None, True

    def pool_method(self, call: ast.Call) -> str | None:
        func = call.func
        what = self.resolve(func)
        if what in _POOLS:
            if what == "concurrent.futures.ProcessPoolExecutor":
                return self.context_method(call_arg(call, "mp_context", 1)) or DEFAULT
            return DEFAULT
        if isinstance(func, ast.Attribute) and func.attr == "Pool":
            return self.context_method(func.value)
        return None

    def process_method(self, call: ast.Call) -> str | None:
        """The start method of ``Process(...)`` / ``ctx.Process(...)`` / a subclass, or None for other calls."""
        func = call.func
        what = self.resolve(func) or ""
        if what == "multiprocessing.Process":
            return DEFAULT
        if what in self.process_classes:
            return self.process_classes[what]
        if isinstance(func, ast.Attribute) and func.attr == "Process":
            return self.context_method(func.value)
        return None

    def cuda_text(self, node: ast.expr, region: str) -> str:
        """How a call touches CUDA ("torch.cuda.set_device", ".cuda()", ".to(device)", "device='cuda'"), or ""."""
        if not isinstance(node, ast.Call):
            return ""
        func = node.func
        what = self.resolve(func) or ""
        if what.startswith("torch.cuda.") and what.split(".")[2] not in _CUDA_NO_INIT:
            return what
        if isinstance(func, ast.Attribute) and func.attr == "cuda" and what != "torch.cuda":
            return ".cuda()"
        if what == "torch.device":
            return ""
        moves = isinstance(func, ast.Attribute) and func.attr == "to"
        device = call_arg(node, "device", 0 if moves else None)
        if device is None:
            return ""
        if (
            cuda_device_literal(device)
            or self.is_cuda_device(device)
            or (isinstance(device, ast.Name) and self.holds_cuda(device.id, region))
        ):
            return f".to({ast.unparse(device)})" if moves else f"device={ast.unparse(device)}"
        return ""

    def is_cuda_device(self, value: ast.expr) -> bool:
        """``torch.device("cuda")``, ``torch.device("cuda" if ... else "cpu")``."""
        return (
            isinstance(value, ast.Call)
            and self.resolve(value.func) == "torch.device"
            and cuda_device_literal(call_arg(value, "type", 0))
        )

    def holds_cuda(self, name: str, region: str) -> bool:
        return (region, name) in self.cuda_names or ("<module>", name) in self.cuda_names
