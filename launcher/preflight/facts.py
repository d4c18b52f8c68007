"""The facts that the preflight scanner reads from a source file, as plain frozen data.

``scan`` produces them, ``source`` judges them. Never imports torch or the user's code.
"""

from __future__ import annotations

from dataclasses import dataclass

# Start methods as the scanner reports them: a literal method, or one decided elsewhere.
DEFAULT = "default"  # the user's own multiprocessing default (platform / set_start_method)
LAUNCHER = "launcher"  # the launcher's chosen start method for its workers
ALWAYS = "always"  # pickled whatever the start method (pool tasks)
LOADER = "loader"  # pickled when the project's DataLoader workers start
LOADER_START = "iterating a DataLoader with workers"  # ProcessStart.what of DataLoader workers


@dataclass(frozen=True)
class ProcessStart:
    line: int
    what: str  # "torch.multiprocessing.spawn", "multiprocessing.Pool", LOADER_START, ...
    method: str  # "spawn" | "fork" | "forkserver" | DEFAULT | LAUNCHER
    certain: bool  # False when it may start nothing (num_workers not known)
    scope: str  # "<module>" (runs at import) or the function's qualified name
    guarded: bool  # under ``if __name__ == "__main__":``
    via: str = ""  # "main()" when reached from a top-level call of a function that starts it
    inner_line: int = 0  # the start's own line when ``via`` is set
    child_cuda: str = ""  # how the started children touch CUDA, as far as seen ("" when they do not)
    child_known: bool = False  # the children's code was found in the project (then "" means: no CUDA)


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
class ImportRef:
    line: int
    module: str  # "data", "pkg.mod", "" for ``from . import x``
    level: int  # leading dots of a relative import
    names: tuple[str, ...]  # the names of ``from module import a, b`` (empty for ``import``)


@dataclass(frozen=True)
class Scan:
    starts: tuple[ProcessStart, ...]  # every start, with top-level reach-through copies
    shipped: tuple[Shipped, ...]
    cuda: tuple[CudaUse, ...]
    user_start_method: str | None  # a literal ``set_start_method("...")`` in the file
    loader_methods: tuple[tuple[str, bool], ...]  # (method, certain) of DataLoaders with workers
    module_names: frozenset[str] = frozenset()  # names bound at module top level, outside the guard
    guard_names: frozenset[str] = frozenset()  # names bound only under the ``__main__`` guard
    imports: tuple[ImportRef, ...] = ()
    # What other project files can import: Process subclasses (name, start method, how run() uses
    # CUDA), module-level functions whose result keeps lambdas (name, labels), Dataset subclasses.
    process_classes: tuple[tuple[str, str, str], ...] = ()
    returns_held: tuple[tuple[str, tuple[str, ...]], ...] = ()
    dataset_classes: frozenset[str] = frozenset()
    starters: tuple[tuple[str, ProcessStart], ...] = ()  # functions and methods that start processes
    returns_loader: tuple[tuple[str, str, bool], ...] = ()  # functions returning a loader with workers
    positive_options: frozenset[str] = frozenset()  # argparse options whose default is above zero
    unsure_workers: bool = False  # a loader whose num_workers it could not read (other files' options may tell)


@dataclass(frozen=True)
class Imported:
    """The exports of project files that one file imports, keyed by the dotted name it resolves
    them to (``data.base_dataset.get_transform``, ``.worker.Worker`` for a relative import)."""

    process_classes: tuple[tuple[str, str, str], ...] = ()
    returns_held: tuple[tuple[str, tuple[str, ...]], ...] = ()
    dataset_classes: frozenset[str] = frozenset()
    starters: tuple[tuple[str, ProcessStart], ...] = ()
    returns_loader: tuple[tuple[str, str, bool], ...] = ()
    options: frozenset[str] = frozenset()  # the project's argparse options whose default is above zero

    def __bool__(self) -> bool:
        return bool(
            self.process_classes or self.returns_held or self.dataset_classes or self.starters
            or self.returns_loader or self.options
        )  # fmt: skip


NOTHING_IMPORTED = Imported()
