"""Files written whole or not at all, and checkpoint parts read back with ``torch.load(weights_only=True)``.

A file is written to a temporary name in its own folder, flushed and fsynced,
renamed over the final name, and the folder fsynced: a SIGKILL or a power cut at
any moment leaves either the previous file or the new one, never a mix. A
temporary file left by a killed writer starts with a dot and ends in
``.partial``, so no reader takes it for a part.

Reading refuses anything but plain containers and tensors (``weights_only``),
and turns every way a part can be bad into one ``CheckpointError`` line that
names the file and what is wrong. Worker side: never imports the launch side.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from typing import IO, Any

import torch

from launcher.errors import CheckpointError

PARTIAL_SUFFIX = ".partial"
FIX_FOREIGN = ("a checkpoint holds plain containers and tensors only; load a file you trust yourself with "
               "torch.load(weights_only=False)")
FIX_BROKEN = "resume from an older checkpoint (resume: PATH), or remove this one"


def fsync_folder(folder: str) -> None:
    """Make a rename or a removal in ``folder`` durable (POSIX; Windows cannot open a folder)."""
    if sys.platform == "win32":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write(handle)`` on a temporary file next to ``path``, make it durable, rename it to ``path``."""
    folder, name = os.path.split(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=PARTIAL_SUFFIX, dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    fsync_folder(folder)


def save_atomic(path: str, state: Any) -> None:
    """``torch.save(state)`` to ``path``, atomically.

    Through a Python file object: its writes release the GIL, so a save in a
    background thread does not hold up the training thread (``torch.save`` to a
    path name writes from C++ with the GIL held for part of the time).
    """
    write_atomic(path, lambda handle: torch.save(state, handle))


def write_text_atomic(path: str, text: str) -> None:
    def write(handle: IO[bytes]) -> None:
        handle.write(text.encode())

    write_atomic(path, write)


def load_part(path: str) -> Any:
    """A part as ``torch.load(weights_only=True)`` reads it, on the CPU; ``CheckpointError`` if it cannot be."""
    try:
        with warnings.catch_warnings():  # torch's warnings about foreign pickles: the error below says it
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing from a checkpoint marked complete", FIX_BROKEN) from None
    except pickle.UnpicklingError as error:
        refused = re.search(r"GLOBAL (\S+)", str(error))  # what unpickling would have imported and run
        if refused is not None:
            raise CheckpointError(f"{path}: refused by torch.load(weights_only=True): it holds {refused.group(1)}, "
                                  "which is neither a tensor nor a plain container", FIX_FOREIGN) from None
        raise CheckpointError(f"{path}: truncated or corrupt, not a whole torch.save file "
                              f"(UnpicklingError: {_unpickler_detail(error)})", FIX_BROKEN) from None
    except (RuntimeError, EOFError, KeyError, ValueError, zipfile.BadZipFile, OSError) as error:
        raise CheckpointError(f"{path}: truncated or corrupt, not a whole torch.save file "
                              f"({type(error).__name__}: {_first_line(error)})", FIX_BROKEN) from None


def _unpickler_detail(error: BaseException) -> str:
    """The line of torch's long weights_only message that says what it stumbled on."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    after = [lines[i + 1] for i, line in enumerate(lines[:-1]) if line.endswith("WeightsUnpickler error:")]
    return _first_line(Exception(after[0] if after else lines[0] if lines else "no detail"))


def _first_line(error: BaseException) -> str:
    text = next((line for line in str(error).splitlines() if line.strip()), "no detail")
    return text if len(text) <= 120 else text[:117] + "..."
