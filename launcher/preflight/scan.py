"""Read one Python source file's AST for multiprocessing hazards; report facts, not verdicts.

Facts: where processes start (and with which start method), which lambdas or local
functions get pickled to another process (and by what), and where CUDA is first
touched. ``preflight`` turns them into pass/warn/fail for a platform and start method.

Never imports torch or the user's code: only ``ast`` over the file's text.

Deliberate limits (a static reader cannot know more without running the code):
- names are resolved through imports and plain assignments, not through attributes
  (``self.loader``), containers or other modules;
- a function called at module top level is followed one level deep (``main()`` at top
  level whose body calls ``mp.spawn``), not further;
- ``Process(...)`` counts as a start when the same scope calls ``.start()`` on something;
- a DataLoader starts workers when iterated (``for``, ``iter``, ``next``, ``list``,
  ``enumerate``, ``zip``, ``tuple``) with ``num_workers`` > 0; a non-literal value is
  "maybe" (``certain=False``); a launcher ``ctx.dataloader`` defaults to ``auto``;
- lambdas given as dataset transforms or dataset attributes are charged to the file's
  DataLoaders that have workers (no data-flow tracking from dataset to loader);
- statements run in source order: loops and branches are not simulated.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

# Start methods as the scanner reports them: a literal method, or one decided elsewhere.
DEFAULT = "default"  # the user's own multiprocessing default (platform / set_start_method)
LAUNCHER = "launcher"  # the launcher's chosen start method for its workers
ALWAYS = "always"  # pickled whatever the start method (pool tasks)
LOADER = "loader"  # pickled when the file's DataLoader workers start
LOADER_START = "iterating a DataLoader with workers"  # ProcessStart.what of DataLoader workers

_TORCH_SPAWN = "torch.multiprocessing.spawn"
_TORCH_START = "torch.multiprocessing.start_processes"
_POOLS = {"multiprocessing.Pool", "concurrent.futures.ProcessPoolExecutor"}
_POOL_TASK_METHODS = {
    "map", "imap", "imap_unordered", "starmap", "apply", "apply_async", "map_async",
    "starmap_async", "submit",
}  # fmt: skip
_ITERATORS = {"iter", "next", "list", "enumerate", "zip", "tuple", "sorted"}
_TRANSFORM_KEYWORDS = {"transform", "target_transform", "transforms", "pre_transform"}
_CUDA_NO_INIT = {"is_available", "device_count", "is_initialized"}


@dataclass(frozen=True)
class ProcessStart:
    line: int
    what: str  # "torch.multiprocessing.spawn", "multiprocessing.Pool", LOADER_START, ...
    method: str  # "spawn" | "fork" | "forkserver" | DEFAULT | LAUNCHER
    certain: bool  # False when it may start nothing (num_workers not a literal)
    scope: str  # "<module>" (runs at import) or the function's qualified name
    guarded: bool  # under ``if __name__ == "__main__":``
    via: str = ""  # "main()" when reached from a top-level call of a function that starts it
    inner_line: int = 0  # the start's own line when ``via`` is set


@dataclass(frozen=True)
class Shipped:
    line: int
    label: str  # "lambda at train.py:42"
    role: str  # "collate_fn", "target of torch.multiprocessing.spawn", ...
    method: str  # "spawn" | "fork" | "forkserver" | DEFAULT | LAUNCHER | ALWAYS | LOADER
    certain: bool


@dataclass(frozen=True)
class CudaUse:
    line: int
    scope: str
    text: str  # "torch.cuda.set_device", ".cuda()", "device='cuda'"


@dataclass(frozen=True)
class Scan:
    starts: tuple[ProcessStart, ...]  # every start, with top-level reach-through copies
    shipped: tuple[Shipped, ...]
    cuda: tuple[CudaUse, ...]
    user_start_method: str | None  # a literal ``set_start_method("...")`` in the file
    loader_methods: tuple[tuple[str, bool], ...]  # (method, certain) of DataLoaders with workers
    module_names: frozenset[str] = frozenset()  # names bound at module top level, outside the guard
    guard_names: frozenset[str] = frozenset()  # names bound only under the ``__main__`` guard


@dataclass(frozen=True)
class _Loader:
    method: str
    certain: bool  # num_workers is a literal > 0
    workers: bool  # may start workers at all


@dataclass
class _Scope:
    qualname: str
    kind: str  # "module" | "function" | "class"
    parent: _Scope | None
    defs: dict[str, tuple[str, int, bool]] = field(default_factory=dict)  # name -> (qualname, line, guard)
    lambdas: dict[str, int] = field(default_factory=dict)  # name = lambda ... -> line
    dataset: bool = False

    @property
    def region(self) -> str:
        """The function whose call runs this code, or ``<module>`` for import time."""
        scope: _Scope | None = self
        while scope is not None and scope.kind == "class":
            scope = scope.parent
        return "<module>" if scope is None or scope.kind == "module" else scope.qualname


def scan_source(source: str, filename: str) -> Scan:
    """Scan Python source text; ``filename`` is how locations are written. Raises SyntaxError."""
    tree = ast.parse(source, filename=filename)
    return _Scanner(tree, filename).scan()


def scan_file(path: Path, display: str) -> Scan:
    """Scan a file (read as UTF-8, undecodable bytes replaced). Raises OSError or SyntaxError."""
    return scan_source(path.read_text(encoding="utf-8", errors="replace"), display)


def is_main_guard(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = (test.left, test.comparators[0])
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    consts = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return len(names) == 1 and len(consts) == 1


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> dotted import path, from every import in the file."""
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    out[a.asname] = a.name
                else:
                    head = a.name.split(".")[0]
                    out[head] = head
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def _canonical(name: str) -> str:
    """Fold re-exports: torch.multiprocessing.Pool is multiprocessing.Pool, and so on."""
    for prefix in ("torch.multiprocessing.spawn.", "torch.multiprocessing."):
        if name.startswith(prefix):
            rest = name[len(prefix) :]
            torch_only = rest in ("spawn", "start_processes")
            return f"torch.multiprocessing.{rest}" if torch_only else f"multiprocessing.{rest}"
    for prefix in ("multiprocessing.pool.", "multiprocessing.context.", "multiprocessing.process."):
        if name.startswith(prefix):
            return "multiprocessing." + name[len(prefix) :]
    if name.startswith("concurrent.futures.process."):
        return "concurrent.futures." + name[len("concurrent.futures.process.") :]
    return name


def _literal_str(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _arg(call: ast.Call, keyword: str, position: int | None) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg == keyword:
            return kw.value
    if position is not None and position < len(call.args):
        arg = call.args[position]
        return None if isinstance(arg, ast.Starred) else arg
    return None


class _Scanner:
    def __init__(self, tree: ast.Module, filename: str) -> None:
        self.tree = tree
        self.file = Path(filename).name  # labels read "lambda at train.py:42"
        self.aliases = _aliases(tree)
        self.contexts: dict[str, str] = {}  # name bound to get_context("x") -> "x"
        self.user_method: str | None = None
        self.starts: list[ProcessStart] = []
        self.shipped: list[Shipped] = []
        self.cuda: list[CudaUse] = []
        self.loaders: dict[tuple[str, str], _Loader] = {}  # (region, name) -> loader
        self.pools: set[tuple[str, str]] = set()  # (region, name)
        self.procs: list[tuple[int, str, str, bool]] = []  # (line, method, region, guarded)
        self.regions_with_start: set[str] = set()
        self.iterations: list[tuple[int, str, str, bool]] = []  # (line, region, name, guarded)
        self.pool_tasks: list[tuple[int, str, str, list[str]]] = []  # (line, region, receiver, labels)
        self.top_calls: list[tuple[int, str]] = []  # (line, function name) at import time
        self.loader_infos: list[_Loader] = []

    # -- names -------------------------------------------------------------------------------
    def resolve(self, node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            return _canonical(self.aliases.get(node.id, node.id))
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            return _canonical(f"{base}.{node.attr}") if base else None
        return None

    def context_method(self, node: ast.expr | None) -> str | None:
        """The start method of a ``get_context("x")`` call, a name bound to one, or a literal."""
        if node is None:
            return None
        if isinstance(node, ast.Name) and node.id in self.contexts:
            return self.contexts[node.id]
        literal = _literal_str(node)
        if literal is not None:
            return literal
        if isinstance(node, ast.Call) and self.resolve(node.func) == "multiprocessing.get_context":
            return _literal_str(_arg(node, "method", 0)) or DEFAULT
        return None

    def offenders(self, node: ast.expr, scope: _Scope) -> list[str]:
        """Labels of lambdas and local (or guard-only) functions inside an expression."""
        found: list[str] = []
        for sub in _walk_outside_lambdas(node):
            if isinstance(sub, ast.Lambda):
                found.append(f"lambda at {self.file}:{sub.lineno}")
            elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
                label = self.label_for_name(sub.id, scope)
                if label:
                    found.append(label)
        return found

    def label_for_name(self, name: str, scope: _Scope) -> str | None:
        s: _Scope | None = scope
        while s is not None:
            if s.kind != "class" or s is scope:
                if name in s.lambdas:
                    return f"lambda {name} at {self.file}:{s.lambdas[name]}"
                if name in s.defs:
                    qual, line, guard = s.defs[name]
                    if s.kind == "function":
                        return f"local function {qual} at {self.file}:{line}"
                    if s.kind == "module" and guard:
                        return f"function {name} defined under the __main__ guard at {self.file}:{line}"
                    return None
            s = s.parent
        return None

    # -- walking -----------------------------------------------------------------------------
    def scan(self) -> Scan:
        module = _Scope("<module>", "module", None)
        self.bind_body(self.tree.body, module, guarded=False)
        self.visit_body(self.tree.body, module, guarded=False)
        self.finish()
        loaders = tuple((info.method, info.certain) for info in self.loader_infos if info.workers)
        module_names = frozenset(n for n, (_, _, g) in module.defs.items() if not g) | _plain_names(
            self.tree.body, guarded=False
        )
        guard_names = (
            frozenset(n for n, (_, _, g) in module.defs.items() if g)
            | _plain_names(self.tree.body, guarded=True)
        ) - module_names
        return Scan(
            tuple(self.starts), tuple(self.shipped), tuple(self.cuda), self.user_method, loaders,
            module_names, guard_names,
        )  # fmt: skip

    def bind_body(self, body: list[ast.stmt], scope: _Scope, guarded: bool) -> None:
        """Record the functions and ``name = lambda`` bindings of one scope's body."""
        for stmt, in_guard in _statements(body, guarded):
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                qual = stmt.name if scope.kind == "module" else (
                    f"{scope.qualname}.<locals>.{stmt.name}" if scope.kind == "function"
                    else f"{scope.qualname}.{stmt.name}"
                )  # fmt: skip
                scope.defs[stmt.name] = (qual, stmt.lineno, in_guard)
            elif isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Lambda):
                for target in stmt.targets:
                    if isinstance(target, ast.Name):
                        scope.lambdas[target.id] = stmt.value.lineno

    def visit_body(self, body: list[ast.stmt], scope: _Scope, guarded: bool) -> None:
        for stmt in body:
            self.visit(stmt, scope, guarded)

    def visit(self, node: ast.AST, scope: _Scope, guarded: bool) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for expr in [*node.decorator_list, *node.args.defaults, *node.args.kw_defaults]:
                if expr is not None:
                    self.visit(expr, scope, guarded)
            qual = scope.defs.get(node.name, (node.name, 0, False))[0]
            inner = _Scope(qual, "function", scope)
            self.bind_body(node.body, inner, guarded=False)
            self.visit_body(node.body, inner, guarded=False)
            return
        if isinstance(node, ast.ClassDef):
            for expr in [*node.bases, *node.decorator_list]:
                self.visit(expr, scope, guarded)
            name = node.name if scope.kind == "module" else f"{scope.qualname}.{node.name}"
            inner = _Scope(name, "class", scope)
            inner.dataset = any((self.resolve(b) or "").endswith("Dataset") for b in node.bases)
            self.bind_body(node.body, inner, guarded)
            self.visit_body(node.body, inner, guarded)
            return
        if isinstance(node, ast.Lambda):
            return  # its body runs only when called
        if isinstance(node, ast.If) and is_main_guard(node.test):
            self.visit_body(node.body, scope, guarded=True)
            self.visit_body(node.orelse, scope, guarded)
            return
        if isinstance(node, (ast.For, ast.AsyncFor)):
            self.note_iteration(node.iter, node.lineno, scope, guarded)
        if isinstance(node, ast.Assign):
            self.note_assignment(node.targets, node.value, scope)
        if isinstance(node, ast.With):
            for item in node.items:
                if isinstance(item.optional_vars, ast.Name):
                    self.note_assignment([item.optional_vars], item.context_expr, scope)
        if isinstance(node, ast.Call):
            self.visit_call(node, scope, guarded)
        for child in ast.iter_child_nodes(node):
            self.visit(child, scope, guarded)

    def note_assignment(self, targets: list[ast.expr], value: ast.expr, scope: _Scope) -> None:
        names = [t.id for t in targets if isinstance(t, ast.Name)]
        if isinstance(value, ast.Call):
            what = self.resolve(value.func)
            if what == "multiprocessing.get_context":
                for n in names:
                    self.contexts[n] = _literal_str(_arg(value, "method", 0)) or DEFAULT
            loader = self.loader_of(value)
            if loader is not None:
                for n in names:
                    self.loaders[(scope.region, n)] = loader
            if self.pool_method(value) is not None:
                for n in names:
                    self.pools.add((scope.region, n))
        if scope.kind == "function" and scope.parent is not None and scope.parent.dataset:
            for target in targets:
                is_self = isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                if (
                    is_self
                    and isinstance(target, ast.Attribute)
                    and getattr(target.value, "id", "") == "self"
                ):
                    role = f"attribute {scope.parent.qualname}.{target.attr} of a Dataset"
                    self.ship(value, role, LOADER, True, scope)

    def note_iteration(self, expr: ast.expr, line: int, scope: _Scope, guarded: bool) -> None:
        for sub in _walk_outside_lambdas(expr):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
                self.iterations.append((line, scope.region, sub.id, guarded))
            elif isinstance(sub, ast.Call):
                loader = self.loader_of(sub)
                if loader is not None and loader.workers:
                    self.add_start(line, LOADER_START, loader.method, loader.certain, scope, guarded)

    # -- calls -------------------------------------------------------------------------------
    def loader_of(self, call: ast.Call) -> _Loader | None:
        func = call.func
        what = self.resolve(func) or ""
        is_dataloader = what == "DataLoader" or what.endswith(".DataLoader")
        is_ctx_loader = isinstance(func, ast.Attribute) and func.attr == "dataloader"
        if not (is_dataloader or is_ctx_loader):
            return None
        workers = _arg(call, "num_workers", 5 if is_dataloader else None)
        method = self.context_method(_arg(call, "multiprocessing_context", None)) or DEFAULT
        if workers is None:
            return _Loader(method, False, workers=not is_dataloader)  # ctx.dataloader: "auto"
        if isinstance(workers, ast.Constant) and isinstance(workers.value, int):
            return _Loader(method, True, workers=workers.value > 0)
        return _Loader(method, False, workers=True)

    def pool_method(self, call: ast.Call) -> str | None:
        func = call.func
        what = self.resolve(func)
        if what in _POOLS:
            if what == "concurrent.futures.ProcessPoolExecutor":
                return self.context_method(_arg(call, "mp_context", 1)) or DEFAULT
            return DEFAULT
        if isinstance(func, ast.Attribute) and func.attr == "Pool":
            return self.context_method(func.value)
        return None

    def process_method(self, call: ast.Call) -> str | None:
        """The start method of ``Process(...)`` / ``ctx.Process(...)``, or None for other calls."""
        func = call.func
        if self.resolve(func) == "multiprocessing.Process":
            return DEFAULT
        if isinstance(func, ast.Attribute) and func.attr == "Process":
            return self.context_method(func.value)
        return None

    def visit_call(self, call: ast.Call, scope: _Scope, guarded: bool) -> None:
        func = call.func
        what = self.resolve(func) or ""
        line = call.lineno
        if what in ("multiprocessing.set_start_method",):
            self.user_method = self.user_method or _literal_str(_arg(call, "method", 0))
        if isinstance(func, ast.Attribute) and func.attr == "start" and not call.args:
            self.regions_with_start.add(scope.region)
        if isinstance(func, ast.Name) and scope.region == "<module>" and not guarded:
            self.top_calls.append((line, func.id))
        if what in (_TORCH_SPAWN, _TORCH_START):
            method = "spawn" if what == _TORCH_SPAWN else (
                _literal_str(_arg(call, "start_method", 5)) or "spawn"
            )  # fmt: skip
            self.add_start(line, what, method, True, scope, guarded)
            self.ship_arg(call, "fn", 0, f"target of {what}", method, scope)
        elif what == "launcher.launch":
            self.add_start(line, what, LAUNCHER, True, scope, guarded)
            self.ship_arg(call, "fn", 0, "target of launcher.launch", LAUNCHER, scope)
        elif (pool := self.pool_method(call)) is not None:
            self.add_start(line, what or "multiprocessing.Pool", pool, True, scope, guarded)
            self.ship_arg(call, "initializer", None, f"initializer of {what or 'Pool'}", pool, scope)
        elif (proc := self.process_method(call)) is not None:
            self.procs.append((line, proc, scope.region, guarded))
            self.ship_arg(call, "target", 1, "target of multiprocessing.Process", proc, scope)
        elif isinstance(func, ast.Attribute) and func.attr in _POOL_TASK_METHODS:
            if isinstance(func.value, ast.Name) and call.args:
                labels = self.offenders(call.args[0], scope)
                self.pool_tasks.append((line, scope.region, func.value.id, labels))
        elif isinstance(func, ast.Name) and func.id in _ITERATORS:
            for arg in call.args:
                self.note_iteration(arg, line, scope, guarded)
        loader = self.loader_of(call)
        for kw in call.keywords:
            if kw.arg in ("collate_fn", "worker_init_fn"):
                if loader is None:
                    self.ship(kw.value, kw.arg, LOADER, True, scope)
                elif loader.workers:
                    self.ship(kw.value, kw.arg, loader.method, loader.certain, scope)
            elif kw.arg in _TRANSFORM_KEYWORDS:
                self.ship(kw.value, kw.arg, LOADER, True, scope)
        if loader is not None:
            self.loader_infos.append(loader)
        self.note_cuda(call, what, scope)

    def note_cuda(self, call: ast.Call, what: str, scope: _Scope) -> None:
        func = call.func
        text = ""
        if what.startswith("torch.cuda.") and what.rsplit(".", 1)[1] not in _CUDA_NO_INIT:
            text = what
        elif isinstance(func, ast.Attribute) and func.attr == "cuda" and what != "torch.cuda":
            text = ".cuda()"
        elif what != "torch.device":
            device = _arg(
                call, "device", 0 if isinstance(func, ast.Attribute) and func.attr == "to" else None
            )
            literal = _literal_str(device)
            if literal is not None and literal.startswith("cuda"):
                text = f"device={literal!r}"
        if text:
            self.cuda.append(CudaUse(call.lineno, scope.region, text))

    def add_start(
        self, line: int, what: str, method: str, certain: bool, scope: _Scope, guarded: bool
    ) -> None:
        self.starts.append(ProcessStart(line, what, method, certain, scope.region, guarded))

    def ship_arg(
        self, call: ast.Call, keyword: str, position: int | None, role: str, method: str, scope: _Scope
    ) -> None:
        value = _arg(call, keyword, position)
        if value is not None:
            self.ship(value, role, method, True, scope)

    def ship(self, value: ast.expr, role: str, method: str, certain: bool, scope: _Scope) -> None:
        for label in self.offenders(value, scope):
            self.shipped.append(Shipped(value.lineno, label, role, method, certain))

    def finish(self) -> None:
        """Resolve what needed the whole file: Process.start, loader iteration, pool tasks, reach."""
        for line, method, region, guarded in self.procs:
            if region in self.regions_with_start:
                self.starts.append(
                    ProcessStart(line, "multiprocessing.Process", method, True, region, guarded)
                )
        for line, region, name, guarded in self.iterations:
            loader = self.loaders.get((region, name)) or self.loaders.get(("<module>", name))
            if loader is not None and loader.workers:
                start = ProcessStart(line, LOADER_START, loader.method, loader.certain, region, guarded)
                self.starts.append(start)
        for line, region, receiver, labels in self.pool_tasks:
            if (region, receiver) in self.pools or ("<module>", receiver) in self.pools:
                for label in labels:
                    self.shipped.append(Shipped(line, label, "task of a process pool", ALWAYS, True))
        inner = [s for s in self.starts if s.scope != "<module>"]
        for line, name in self.top_calls:
            for start in inner:
                if start.scope == name:
                    self.starts.append(
                        ProcessStart(line, start.what, start.method, start.certain, "<module>", False,
                                     via=f"{name}()", inner_line=start.line)
                    )  # fmt: skip
        self.starts = sorted(set(self.starts), key=lambda s: (s.line, s.inner_line, s.what))
        self.shipped = sorted(set(self.shipped), key=lambda s: (s.line, s.label, s.role))


def _statements(body: list[ast.stmt], guarded: bool) -> Iterator[tuple[ast.stmt, bool]]:
    """The statements of one scope, into if/for/while/with/try blocks but not into defs or classes."""
    for stmt in body:
        yield stmt, guarded
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        inner_guard = guarded or (isinstance(stmt, ast.If) and is_main_guard(stmt.test))
        for name in ("body", "orelse", "finalbody"):
            block = getattr(stmt, name, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                yield from _statements(block, inner_guard if name == "body" else guarded)
        for handler in getattr(stmt, "handlers", []):
            yield from _statements(handler.body, guarded)


def _plain_names(body: list[ast.stmt], guarded: bool) -> frozenset[str]:
    """Names bound at module level by assignment, import or class, inside (or outside) the guard."""
    names: set[str] = set()
    for stmt, in_guard in _statements(body, False):
        if in_guard != guarded:
            continue
        if isinstance(stmt, ast.ClassDef):
            names.add(stmt.name)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            for alias in stmt.names:
                names.add(alias.asname or alias.name.split(".")[0])
    return frozenset(names)


def _walk_outside_lambdas(node: ast.AST) -> Iterator[ast.AST]:
    """``ast.walk`` that yields a lambda but does not enter its body."""
    yield node
    if isinstance(node, ast.Lambda):
        return
    for child in ast.iter_child_nodes(node):
        yield from _walk_outside_lambdas(child)
