"""Read one Python source file's AST for multiprocessing hazards; report facts, not verdicts.

Facts: where processes start (and with which start method), which lambdas or local
functions get pickled to another process (and by what), where CUDA is first touched,
which modules the file imports and what it exports to them (``facts.Scan``);
``source`` turns them into pass/warn/fail. What other project files export comes in
as ``facts.Imported`` (``project`` reads the files, deepest first).

Never imports torch or the user's code: only ``ast`` over the file's text.

Deliberate limits (a static reader cannot know more without running the code):
- names are resolved through imports, plain assignments, ``self.method`` and instances
  of classes made in the same scope, not through other attributes or containers;
- a function called at module top level is followed one level deep (``main()`` at top
  level whose body calls ``mp.spawn``), not further;
- ``Process(...)`` (or a subclass) counts as a start when the same scope, or another
  method of the same class, calls ``.start()`` on something;
- a DataLoader (or a subclass, or a ``*Loader`` given ``num_workers``) starts workers when
  iterated (``for``, a comprehension, ``iter``, ``next``, ``list``, ``enumerate``, ...) or
  given to a function, with ``num_workers`` > 0 (``values.Counts`` reads literals, argparse
  defaults, ``**kwargs`` dicts and call sites); a value it cannot read is "maybe"
  (``certain=False``); a launcher ``ctx.dataloader`` defaults to ``auto``;
- lambdas given to datasets (transforms, constructor arguments, attributes) are charged
  to the project's loaders that have workers (no data-flow tracking from dataset to loader);
  a lambda bound only under an ``if`` is "maybe" (an option, not the default run);
- statements run in source order: loops and branches are not simulated.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from launcher.preflight.calls import Loader
from launcher.preflight.facts import (
    ALWAYS,
    DEFAULT,
    LAUNCHER,
    LOADER,
    LOADER_START,
    NOTHING_IMPORTED,
    CudaUse,
    Imported,
    ImportRef,
    ProcessStart,
    Scan,
    Shipped,
)
from launcher.preflight.held import HeldReader, Scope, is_self_attribute
from launcher.preflight.syntax import (
    call_arg,
    cuda_device_literal,
    import_aliases,
    is_main_guard,
    last_name,
    literal_str,
    plain_names,
    walk_outside_lambdas,
)
from launcher.preflight.values import Counts

_TORCH_SPAWN = "torch.multiprocessing.spawn"
_TORCH_START = "torch.multiprocessing.start_processes"
_POOL_TASK_METHODS = {
    "map", "imap", "imap_unordered", "starmap", "apply", "apply_async", "map_async",
    "starmap_async", "submit",
}  # fmt: skip
_ITERATORS = {"iter", "next", "list", "enumerate", "zip", "tuple", "sorted"}
_NOT_ITERATING = {
    "len", "print", "isinstance", "type", "id", "repr", "str", "hasattr", "getattr", "setattr", "callable", "vars",
    "dir", "DataLoader", "DistributedSampler", "prepare",
}  # fmt: skip
_LOADER_KEYWORDS = ("collate_fn", "worker_init_fn")


def scan_source(source: str, filename: str, imported: Imported = NOTHING_IMPORTED) -> Scan:
    """Scan Python source text; ``filename`` is how locations are written; ``imported``: what the
    project files it imports export. Raises SyntaxError."""
    tree = ast.parse(source, filename=filename)
    return _Scanner(tree, filename, imported).scan()


def scan_file(path: Path, display: str, imported: Imported = NOTHING_IMPORTED) -> Scan:
    """Scan a file (read as UTF-8, undecodable bytes replaced). Raises OSError or SyntaxError."""
    return scan_source(path.read_text(encoding="utf-8", errors="replace"), display, imported)


def _imports(nodes: list[ast.AST]) -> tuple[ImportRef, ...]:
    refs: list[ImportRef] = []
    for node in nodes:
        if isinstance(node, ast.Import):
            refs += [ImportRef(node.lineno, a.name, 0, ()) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            refs.append(ImportRef(node.lineno, node.module or "", node.level, tuple(a.name for a in node.names)))
    return tuple(refs)


class _Scanner(HeldReader):
    def __init__(self, tree: ast.Module, filename: str, imported: Imported) -> None:
        returns = {name: list(labels) for name, labels in imported.returns_held}
        self.nodes = list(ast.walk(tree))  # read once for imports, options and counts
        super().__init__(import_aliases(self.nodes), Counts(self.nodes, imported.options), Path(filename).name, returns)
        self.display = filename
        self.process_classes.update((name, method) for name, method, _ in imported.process_classes)
        self.process_child = {name: f"!{child}" for name, _, child in imported.process_classes if child}
        self.imported_starters = dict(imported.starters)
        self.returns_loader = {name: Loader(method, certain, True) for name, method, certain in imported.returns_loader}
        self.instances: dict[tuple[str, str], str] = {}  # (region, name) -> the class it was made from
        self.dataset_classes.update(imported.dataset_classes)
        self.tree = tree
        self.user_method: str | None = None
        self.starts: list[ProcessStart] = []
        self.shipped: list[Shipped] = []
        self.cuda: list[CudaUse] = []
        self.loaders: dict[tuple[str, str], Loader] = {}  # (region, name) -> loader
        self.pools: dict[tuple[str, str], int] = {}  # (region, name) -> the pool's start line
        self.procs: list[tuple[int, str, str, bool, str]] = []  # (line, method, region, guarded, child_cuda)
        self.regions_with_start: dict[str, int] = {}  # region -> the line of its first ``.start()``
        self.iterations: list[tuple[int, str, str, bool]] = []  # (line, region, name, guarded)
        # (line, region, receiver, its pool's line when the task is read, labels, targets)
        self.pool_tasks: list[tuple[int, str, str, int | None, list[str], list[str]]] = []
        self.top_calls: list[tuple[int, str]] = []  # (line, function name) at import time
        self.loader_infos: list[Loader] = []
        self.calls: dict[str, set[str]] = {}  # region -> qualnames of the file's functions it calls
        self.pool_children: dict[tuple[str, int], list[str]] = {}  # (region, line) of ``Pool(...).map``

    # -- names -------------------------------------------------------------------------------
    # -- walking -----------------------------------------------------------------------------
    def placed(self, labels: list[str]) -> list[str]:
        """Labels as other files show them: "lambda at data/base.py:12", the path from the working directory."""
        return [label.replace(f" at {self.file}:", f" at {self.display}:") for label in labels]

    def scan(self) -> Scan:
        module = Scope("<module>", "module", None)
        self.bind_classes(self.tree.body)
        self.bind_body(self.tree.body, module, guarded=False)
        self.bind_returns(self.tree.body, module)
        self.visit_body(self.tree.body, module, guarded=False)
        self.finish()
        loaders = tuple((info.method, info.certain) for info in self.loader_infos if info.workers)
        module_names = frozenset(n for n, (_, _, g) in module.defs.items() if not g) | plain_names(
            self.tree.body, guarded=False
        )
        guard_names = (
            frozenset(n for n, (_, _, g) in module.defs.items() if g) | plain_names(self.tree.body, guarded=True)
        ) - module_names
        return Scan(
            tuple(self.starts), tuple(self.shipped), tuple(self.cuda), self.user_method, loaders,
            module_names, guard_names, _imports(self.nodes),
            tuple((c, m, self.cuda_in(self.process_child.get(c, f"{c}.run"))) for c, m in self.process_classes.items()
                  if c in module_names),
            tuple((f, tuple(self.placed(labels))) for f, labels in {**self.class_held, **self.returns_held}.items()
                  if f in module_names),
            frozenset(c for c in self.dataset_classes if c in module_names),
            tuple((s.scope, s) for s in self.starts if _exported(s.scope, module_names) and not s.via),
            tuple((f, loader.method, loader.certain) for f, loader in self.returns_loader.items()
                  if _exported(f, module_names)),
            self.counts.positive_options(),
            any(info.workers and not info.certain for info in self.loader_infos),
        )  # fmt: skip

    def visit_body(self, body: list[ast.stmt], scope: Scope, guarded: bool) -> None:
        for stmt in body:
            self.visit(stmt, scope, guarded)

    def visit(self, node: ast.AST, scope: Scope, guarded: bool) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for expr in [*node.decorator_list, *node.args.defaults, *node.args.kw_defaults]:
                if expr is not None:
                    self.visit(expr, scope, guarded)
            inner = self.bound.pop(id(node), None)
            if inner is None:
                inner = Scope(scope.defs.get(node.name, (node.name, 0, False))[0], "function", scope)
                self.bind_body(node.body, inner, guarded=False)
            self.visit_body(node.body, inner, guarded=False)
            return
        if isinstance(node, ast.ClassDef):
            for expr in [*node.bases, *node.decorator_list]:
                self.visit(expr, scope, guarded)
            name = node.name if scope.kind == "module" else f"{scope.qualname}.{node.name}"
            inner = Scope(name, "class", scope)
            inner.dataset = node.name in self.dataset_classes
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
        if isinstance(node, ast.comprehension):
            self.note_iteration(node.iter, node.iter.lineno, scope, guarded)
        if isinstance(node, ast.Assign):
            self.note_assignment(node.targets, node.value, scope)
        if isinstance(node, ast.Return) and node.value is not None:
            loader = self.loader_held(node.value, scope)
            if loader is not None and loader.workers:
                self.returns_loader.setdefault(scope.region, loader)
        if isinstance(node, ast.With):
            for item in node.items:
                if isinstance(item.optional_vars, ast.Name):
                    self.note_assignment([item.optional_vars], item.context_expr, scope)
        if isinstance(node, ast.Call):
            self.visit_call(node, scope, guarded)
        for child in ast.iter_child_nodes(node):
            self.visit(child, scope, guarded)

    def note_assignment(self, targets: list[ast.expr], value: ast.expr, scope: Scope) -> None:
        names = [t.id for t in targets if isinstance(t, ast.Name)]
        unpacked = [e.id for t in targets if isinstance(t, ast.Tuple) for e in t.elts if isinstance(e, ast.Name)]
        region = scope.region
        if region == "<module>" and isinstance(value, ast.Name) and value.id in self.aliases:
            self.aliases.update({n: self.aliases[value.id] for n in names})  # Exp = Exp_Main
        if isinstance(value, ast.Call) and (made := self.resolve(value.func)):
            self.instances.update({(region, n): made for n in names})
        for target in targets:
            if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
                self.dicts.set_item(target.value.id, target.slice, value, region)
        for n in names:
            self.dicts.assign(n, value, region)
            if self.cuda_text(value, region) or cuda_device_literal(value) or self.is_cuda_device(value):
                self.cuda_names.add((region, n))
            else:
                self.cuda_names.discard((region, n))
        if isinstance(value, ast.Call):
            what = self.resolve(value.func)
            if what == "multiprocessing.get_context":
                for n in names:
                    self.contexts[n] = literal_str(call_arg(value, "method", 0)) or DEFAULT
        loader = self.loader_held(value, scope)
        if loader is not None:
            for n in [*names, *unpacked]:
                self.loaders[(region, n)] = loader
        if isinstance(value, ast.Call) and self.pool_method(value) is not None:
            for n in names:
                self.pools[(region, n)] = value.lineno
        owner = scope.parent if scope.kind == "function" else None
        process = self.process_classes.get(owner.qualname) if owner is not None else None
        if owner is not None and (owner.dataset or process is not None):
            for target in targets:
                if is_self_attribute(target) and isinstance(target, ast.Attribute):
                    kind = "a Dataset" if owner.dataset else "a Process (pickled when it starts)"
                    role = f"attribute {owner.qualname}.{target.attr} of {kind}"
                    self.ship(value, role, LOADER if owner.dataset else (process or DEFAULT), True, scope)

    def loader_held(self, value: ast.expr, scope: Scope) -> Loader | None:
        """The loader a value is or holds: built there, in a container, a loader variable, or the
        result of a function or method that returns one (``train_set, train_loader = get_data()``)."""
        region = scope.region
        if isinstance(value, ast.Name):
            return self.loaders.get((region, value.id)) or self.loaders.get(("<module>", value.id))
        if isinstance(value, ast.Tuple):
            return next(filter(None, (self.loader_held(e, scope) for e in value.elts)), None)
        if isinstance(value, ast.Call) and (callee := self.callee(value.func, scope)) in self.returns_loader:
            return self.returns_loader[callee]
        return self.loader_in(value, region)

    def callee(self, func: ast.expr, scope: Scope) -> str:
        """The function a call runs: the file's qualified name, ``Cls.method`` for ``self.method``,
        ``module.Cls.method`` for a method of an instance of an imported class, or the dotted import."""
        if isinstance(func, ast.Name):
            return self.def_qualname(func.id, scope) or self.resolve(func) or func.id
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            base = func.value.id
            if base == "self" and _owner(scope.region):
                return f"{_owner(scope.region)}.{func.attr}"
            made = self.instances.get((scope.region, base)) or self.instances.get(("<module>", base))
            if made is not None:
                return f"{made}.{func.attr}"
        return self.resolve(func) or ""

    def loader_in(self, value: ast.expr, region: str) -> Loader | None:
        """The loader a value builds, itself or in a container (``{x: DataLoader(...) for x in ...}``)."""
        if isinstance(value, ast.Call):
            return self.loader_of(value, region)
        if isinstance(value, (ast.DictComp, ast.ListComp, ast.Dict, ast.List, ast.Tuple)):
            for sub in ast.walk(value):
                if isinstance(sub, ast.Call) and (loader := self.loader_of(sub, region)) is not None:
                    return loader
        return None

    def note_iteration(self, expr: ast.expr, line: int, scope: Scope, guarded: bool) -> None:
        for sub in walk_outside_lambdas(expr):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
                self.iterations.append((line, scope.region, sub.id, guarded))
            elif isinstance(sub, ast.Call):
                loader = self.loader_of(sub, scope.region)
                if loader is not None and loader.workers:
                    self.add_start(line, LOADER_START, loader.method, loader.certain, scope, guarded)

    # -- calls -------------------------------------------------------------------------------
    def visit_call(self, call: ast.Call, scope: Scope, guarded: bool) -> None:
        func = call.func
        what = self.resolve(func) or ""
        line, region = call.lineno, scope.region
        if what == "multiprocessing.set_start_method":
            self.user_method = self.user_method or literal_str(call_arg(call, "method", 0))
        if isinstance(func, ast.Attribute) and func.attr == "start" and not call.args:
            self.regions_with_start.setdefault(region, line)
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.attr == "update":
            self.dicts.update(func.value.id, call, region)
        runs = self.callee(func, scope)
        if region == "<module>" and not guarded and runs in self.imported_starters:
            start = self.imported_starters[runs]
            short = ast.unparse(func)
            self.starts.append(ProcessStart(line, start.what, start.method, start.certain, "<module>", False,
                                            via=f"{short}()", inner_line=start.line))  # fmt: skip
        for arg in [*call.args, *(kw.value for kw in call.keywords)]:
            arg = arg.value if isinstance(arg, ast.Subscript) else arg  # loaders["train"]
            if isinstance(arg, ast.Name) and last_name(func) not in _NOT_ITERATING:
                self.iterations.append((line, region, arg.id, guarded))  # a function given a loader runs it
        if isinstance(func, ast.Name):
            if region == "<module>" and not guarded:
                self.top_calls.append((line, func.id))
            called = self.def_qualname(func.id, scope)
            if called is not None:
                self.calls.setdefault(region, set()).add(called)
        if what in (_TORCH_SPAWN, _TORCH_START):
            method = "spawn" if what == _TORCH_SPAWN else (
                literal_str(call_arg(call, "start_method", 5)) or "spawn"
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
            if what in self.process_classes:  # a subclass: its run(), and everything given to it
                given = [*call.args, *(kw.value for kw in call.keywords)]
                child = self.process_child.get(what) or self.child_cuda(given, scope, f"{what}.run")
            else:
                child = self.child_cuda([call_arg(call, "target", 1), call_arg(call, "args", 3)], scope)
            self.procs.append((line, proc, region, guarded, child))
            self.ship_arg(call, "target", 1, "target of multiprocessing.Process", proc, scope)
        elif isinstance(func, ast.Attribute) and func.attr in _POOL_TASK_METHODS and call.args:
            self.note_pool_task(call, func, scope, guarded)
        elif isinstance(func, ast.Name) and func.id in _ITERATORS:
            for arg in call.args:
                self.note_iteration(arg, line, scope, guarded)
        self.note_loader_call(call, what, scope)
        text = self.cuda_text(call, region)
        if text:
            self.cuda.append(CudaUse(line, region, text))

    def note_pool_task(self, call: ast.Call, func: ast.Attribute, scope: Scope, guarded: bool) -> None:
        labels = self.offenders(call.args[0], scope)
        targets = [self.child_cuda(call.args, scope)]
        receiver = func.value
        if isinstance(receiver, ast.Name):
            bound = self.pools.get((scope.region, receiver.id)) or self.pools.get(("<module>", receiver.id))
            self.pool_tasks.append((call.lineno, scope.region, receiver.id, bound, labels, targets))
        elif isinstance(receiver, ast.Call) and self.pool_method(receiver) is not None:
            for label in labels:
                self.shipped.append(Shipped(call.lineno, label, "task of a process pool", ALWAYS, True))
            self.pool_children[(scope.region, receiver.lineno)] = targets

    def note_loader_call(self, call: ast.Call, what: str, scope: Scope) -> None:
        """Functions given to a loader or a dataset: pickled with the dataset when workers start."""
        loader = self.loader_of(call, scope.region)
        keywords = list(call.keywords)
        for kw in call.keywords:
            if kw.arg is None and loader is not None:
                entries = self.dicts.entries(kw.value, scope.region) or {}
                keywords += [ast.keyword(arg=k, value=v) for k, v in entries.items() if k in _LOADER_KEYWORDS]
        for kw in keywords:
            if kw.arg in _LOADER_KEYWORDS:
                if loader is None:
                    self.ship(kw.value, kw.arg, LOADER, True, scope)
                elif loader.workers:
                    self.ship(kw.value, kw.arg, loader.method, loader.certain, scope)
            elif kw.arg and kw.arg.endswith(("transform", "transforms")):
                self.ship(kw.value, kw.arg, LOADER, True, scope)
        if loader is not None:
            self.loader_infos.append(loader)
        name = last_name(call.func)
        if loader is None and (name in self.dataset_classes or name.endswith(("Dataset", "Folder"))):
            for arg in call.args:
                self.ship(arg, f"argument of {name} (a Dataset)", LOADER, True, scope)

    def child_cuda(self, given: Sequence[ast.expr | None], scope: Scope, run: str = "") -> str:
        """How a child touches CUDA: its target function uses it, or it is handed a CUDA value."""
        names = [run] if run else []
        for node in given:
            if node is None:
                continue
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and self.holds_cuda(sub.id, scope.region):
                    return f"is given {sub.id}, which holds CUDA"
                if isinstance(sub, ast.Name):
                    qual = self.def_qualname(sub.id, scope)
                    if qual is not None:
                        names.append(qual)
        return "\0".join(names)  # resolved in ``finish``, once every function's CUDA use is known

    def add_start(
        self, line: int, what: str, method: str, certain: bool, scope: Scope, guarded: bool
    ) -> None:
        self.starts.append(ProcessStart(line, what, method, certain, scope.region, guarded))

    def ship_arg(
        self, call: ast.Call, keyword: str, position: int | None, role: str, method: str, scope: Scope
    ) -> None:
        value = call_arg(call, keyword, position)
        if value is not None:
            self.ship(value, role, method, True, scope)

    def ship(self, value: ast.expr, role: str, method: str, certain: bool, scope: Scope) -> None:
        for label in self.offenders(value, scope):
            self.shipped.append(Shipped(value.lineno, label, role, method, certain and label not in self.optional))

    def finish(self) -> None:
        """Resolve what needed the whole file: Process.start, loader iteration, pool tasks, reach."""
        owners = {_owner(r): n for r, n in reversed(self.regions_with_start.items()) if _owner(r)}
        for line, method, region, guarded, child in self.procs:
            if region not in self.regions_with_start and _owner(region) in owners:
                line = owners[_owner(region)]  # made in one method, started in another: report the start
            if region in self.regions_with_start or _owner(region) in owners:
                self.starts.append(
                    ProcessStart(line, "multiprocessing.Process", method, True, region, guarded,
                                 child_cuda=self.cuda_in(child), child_known=_known(child))
                )  # fmt: skip
        for line, region, name, guarded in self.iterations:
            loader = self.loaders.get((region, name)) or self.loaders.get(("<module>", name))
            if loader is not None and loader.workers:
                start = ProcessStart(line, LOADER_START, loader.method, loader.certain, region, guarded)
                self.starts.append(start)
        children: dict[tuple[str, int], list[str]] = dict(self.pool_children)
        for line, region, receiver, bound, labels, targets in self.pool_tasks:
            pool_line = bound or self.pools.get((region, receiver)) or self.pools.get(("<module>", receiver))
            if pool_line is not None:
                children.setdefault((region, pool_line), []).extend(targets)
                for label in labels:
                    self.shipped.append(Shipped(line, label, "task of a process pool", ALWAYS, True))
        for i, start in enumerate(self.starts):
            child = "\0".join(children.get((start.scope, start.line), []))
            if _known(child) and not start.child_known:
                self.starts[i] = replace(start, child_cuda=self.cuda_in(child), child_known=True)
        inner = [s for s in self.starts if s.scope != "<module>"]
        for line, name in self.top_calls:
            for start in inner:
                if start.scope == name:
                    reached = replace(start, line=line, scope="<module>", guarded=False, via=f"{name}()",
                                      inner_line=start.line)  # fmt: skip
                    self.starts.append(reached)
        self.starts = sorted(set(self.starts), key=lambda s: (s.line, s.inner_line, s.what))
        self.shipped = sorted(set(self.shipped), key=lambda s: (s.line, s.label, s.role))

    def cuda_in(self, child: str) -> str:
        """``child_cuda``'s text: as given, or the first CUDA use in the named functions (one call deep)."""
        if child.startswith("!"):
            return child[1:]
        if not child or not child.replace("\0", "").strip() or child.startswith("is given"):
            return child
        for qual in child.split("\0"):
            for region in [qual, *sorted(self.calls.get(qual, ()))]:
                uses = [c for c in self.cuda if c.scope == region]
                if uses:
                    return f"{qual} uses CUDA at line {uses[0].line} ({uses[0].text})"
        return ""


def _exported(region: str, module_names: frozenset[str]) -> bool:
    """A module-level function or a method of a module-level class (what another file can call)."""
    return "<locals>" not in region and region.split(".")[0] in module_names


def _owner(region: str) -> str:
    """The class of a method (``A3C`` of ``A3C.__init__``): its methods share the instance's processes."""
    head, _, _ = region.rpartition(".")
    return "" if "<locals>" in region else head


def _known(child: str) -> bool:
    """Whether ``child_cuda`` names the children's code (functions found, or a text from their file)."""
    return bool(child.replace("\0", "").strip())
