"""The folder of a job's checkpoints: one sub-folder per save, marked complete last, and a ``latest`` pointer.

::

    <dir>/latest                 the name of the newest complete checkpoint, e.g. "step-000000100"
    <dir>/step-000000100/
        shared.pt                rank 0: what every rank holds alike (model, optimizer, scheduler, extras)
        rank-00000.pt ...        each rank's own part (RNG states, loader positions)
        complete.json            written last, by rank 0, once every rank's part is durable

A checkpoint is complete once its ``complete.json`` exists, and only then:
parts of a save that was cut short are never read, and are removed once a
newer checkpoint is complete. Removing a checkpoint unmarks it first, so one
half removed is an incomplete one. Every file is written atomically
(``files.write_atomic``). Worker side: never imports the launch side.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from typing import Any

from launcher.errors import CheckpointError
from launcher.runtime.checkpoint.files import (
    FIX_BROKEN,
    PARTIAL_SUFFIX,
    fsync_folder,
    load_part,
    save_atomic,
    write_text_atomic,
)

FORMAT = 1
MARKER = "complete.json"
LATEST = "latest"
SHARED_PART = "shared"
_FOLDER = re.compile(r"step-(\d+)")


def rank_part(rank: int) -> str:
    return f"rank-{rank:05d}"


def folder_name(step: int) -> str:
    return f"step-{step:09d}"


@dataclass(frozen=True)
class Manifest:
    """What ``complete.json`` says: the step, how many ranks saved it, and its parts."""

    step: int
    world_size: int
    parts: tuple[str, ...]


class CheckpointDir:
    """A job's checkpoint folder: writing parts, marking a checkpoint complete, finding and pruning them."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)

    def folder(self, step: int) -> str:
        return os.path.join(self.root, folder_name(step))

    def part_path(self, step: int, part: str) -> str:
        return os.path.join(self.folder(step), f"{part}.pt")

    # -- writing -------------------------------------------------------------------------------------

    def begin(self, step: int) -> None:
        """Make the step's folder; a complete checkpoint of the same step is unmarked before it is overwritten."""
        os.makedirs(self.root, exist_ok=True)
        folder = self.folder(step)
        created = not os.path.isdir(folder)
        os.makedirs(folder, exist_ok=True)
        if created:
            fsync_folder(self.root)
        with contextlib.suppress(FileNotFoundError):  # every rank may try: the first one removes it
            os.unlink(os.path.join(folder, MARKER))
            fsync_folder(folder)

    def write_part(self, step: int, part: str, state: Any) -> None:
        save_atomic(self.part_path(step, part), state)

    def mark_complete(self, step: int, world_size: int, parts: list[str]) -> None:
        """Every part is durable: mark the checkpoint complete, then point ``latest`` at it."""
        manifest = {"format": FORMAT, "step": step, "world_size": world_size, "parts": sorted(parts),
                    "saved_at": time.time()}
        write_text_atomic(os.path.join(self.folder(step), MARKER), json.dumps(manifest) + "\n")
        write_text_atomic(os.path.join(self.root, LATEST), folder_name(step) + "\n")

    # -- finding -------------------------------------------------------------------------------------

    def steps(self) -> list[int]:
        """Steps with a folder here, complete or not, in order."""
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted(int(m.group(1)) for name in names if (m := _FOLDER.fullmatch(name)))

    def is_complete(self, step: int) -> bool:
        return os.path.exists(os.path.join(self.folder(step), MARKER))

    def complete_steps(self) -> list[int]:
        return [step for step in self.steps() if self.is_complete(step)]

    def latest_step(self) -> int | None:
        """The checkpoint ``latest`` names if it is complete, else the complete one with the highest step."""
        try:
            with open(os.path.join(self.root, LATEST), encoding="utf-8") as handle:
                match = _FOLDER.fullmatch(handle.read().strip())
        except (OSError, UnicodeDecodeError):
            match = None
        if match is not None and self.is_complete(int(match.group(1))):
            return int(match.group(1))
        complete = self.complete_steps()
        return complete[-1] if complete else None

    def manifest(self, step: int) -> Manifest:
        path = os.path.join(self.folder(step), MARKER)
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
            if data.get("format") != FORMAT:
                raise CheckpointError(f"{path}: format {data.get('format')!r}, this launcher reads format {FORMAT}",
                                      "resume with the launcher version that saved it")
            return Manifest(int(data["step"]), int(data["world_size"]), tuple(str(p) for p in data["parts"]))
        except FileNotFoundError:
            raise CheckpointError(f"{self.folder(step)}: not a complete checkpoint (no {MARKER})",
                                  "resume from a folder with a complete.json, or from the checkpoint dir") from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise CheckpointError(f"{path}: unreadable ({type(error).__name__}: {error})", FIX_BROKEN) from None

    def load_part(self, step: int, part: str) -> Any:
        return load_part(self.part_path(step, part))

    # -- pruning -------------------------------------------------------------------------------------

    def prune(self, keep: int | None, newest: int) -> list[int]:
        """After ``newest`` is complete: remove older checkpoints beyond the ``keep`` newest, and the parts
        of older saves that never completed. Newer folders are left alone (another rank may be writing)."""
        older = [step for step in self.complete_steps() if step < newest]
        kept = set(older if keep is None else older[max(0, len(older) - (keep - 1)):])
        removed = [step for step in self.steps() if step < newest and step not in kept]
        for step in removed:
            self._remove(step)
        self._remove_partial_files()
        return sorted(removed)

    def _remove(self, step: int) -> None:
        folder = self.folder(step)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(folder, MARKER))  # first: a removal cut short leaves an incomplete folder
            fsync_folder(folder)
        shutil.rmtree(folder, ignore_errors=True)

    def _remove_partial_files(self) -> None:
        """Temporary files of a ``latest`` write that was killed (only rank 0 writes here, one at a time)."""
        for name in os.listdir(self.root):
            if name.startswith(".") and name.endswith(PARTIAL_SUFFIX):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(self.root, name))


def locate(path: str) -> tuple[CheckpointDir, int | None]:
    """``resume: PATH``: a checkpoint's folder (``.../step-000000100``) or a checkpoint dir (its latest)."""
    path = os.path.abspath(path)
    if not os.path.isdir(path):
        raise CheckpointError(f"checkpoint.resume: {path}: no such folder",
                              "name a checkpoint dir or one of its step-* folders")
    match = _FOLDER.fullmatch(os.path.basename(path))
    if match is not None:
        return CheckpointDir(os.path.dirname(path)), int(match.group(1))
    return CheckpointDir(path), None
