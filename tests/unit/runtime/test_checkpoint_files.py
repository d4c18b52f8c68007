"""Checkpoint files: atomic writes, the folder layout, keep-K, the writer thread, and what a bad file says.

The crash test kills a child process with SIGKILL while its writer thread is
in the middle of a part (its ``torch.save`` writes half the bytes, then
blocks): the previous checkpoint must still be the latest and load.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
import torch

from launcher.errors import CheckpointError
from launcher.runtime.checkpoint import files
from launcher.runtime.checkpoint.files import load_part, save_atomic, write_atomic
from launcher.runtime.checkpoint.layout import SHARED_PART, CheckpointDir, locate, rank_part
from launcher.runtime.checkpoint.writer import AsyncWriter

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("no_leftover_children")]


def state(step: int) -> dict[str, Any]:
    return {"step": step, "weights": torch.full((64, 64), float(step)), "names": ["a", "b"], "lr": 0.1}


def save(ckpt: CheckpointDir, step: int, keep: int | None = None) -> None:
    """A whole save of a world of one: both parts, the marker, then pruning."""
    ckpt.begin(step)
    ckpt.write_part(step, SHARED_PART, state(step))
    ckpt.write_part(step, rank_part(0), {"rng": torch.get_rng_state()})
    ckpt.mark_complete(step, 1, [SHARED_PART, rank_part(0)])
    ckpt.prune(keep, step)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.partial"))


# -- atomic files ------------------------------------------------------------------------------------


def test_a_write_that_fails_leaves_the_previous_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "part.pt"
    save_atomic(str(path), state(1))

    def half_then_fail(handle: Any) -> None:
        handle.write(b"half a file")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_atomic(str(path), half_then_fail)
    assert load_part(str(path))["step"] == 1
    assert leftovers(tmp_path) == []


def _write_slowly_then_hang(root: str, halfway: Any) -> None:
    """Child: save step 1, then start step 2 in the writer thread, whose torch.save stops half way."""
    ckpt = CheckpointDir(root)
    save(ckpt, 1)
    real_save = torch.save

    def half_save(obj: Any, handle: Any) -> None:
        buffer = io.BytesIO()
        real_save(obj, buffer)
        data = buffer.getvalue()
        handle.write(data[: len(data) // 2])
        handle.flush()
        halfway.set()
        threading.Event().wait()  # mid-file until killed

    files.torch.save = half_save  # type: ignore[assignment]  # this child process only
    writer = AsyncWriter()
    writer.submit(lambda: save(ckpt, 2))
    writer.wait()


def test_sigkill_in_the_middle_of_a_part_leaves_the_previous_checkpoint_loadable(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    halfway = context.Event()
    child = context.Process(target=_write_slowly_then_hang, args=(str(tmp_path), halfway))
    child.start()
    try:
        assert halfway.wait(30), "the child never got half way through its part"
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
    finally:
        child.join(10)
    assert child.exitcode == -signal.SIGKILL
    ckpt = CheckpointDir(str(tmp_path))
    assert ckpt.steps() == [1, 2]  # step 2 was begun...
    assert ckpt.latest_step() == 1  # ...but is not taken for a checkpoint
    assert not ckpt.is_complete(2)
    assert [name for name in os.listdir(ckpt.folder(2)) if not name.startswith(".")] == []  # only a temporary
    assert (tmp_path / "latest").read_text() == "step-000000001\n"
    assert torch.equal(ckpt.load_part(1, SHARED_PART)["weights"], state(1)["weights"])
    save(ckpt, 3, keep=5)  # the next complete save removes what the killed one left
    assert ckpt.steps() == [1, 3]
    assert leftovers(tmp_path) == []


# -- layout and keep-K -------------------------------------------------------------------------------


def test_keep_k_removes_older_checkpoints_only_after_a_newer_one_is_complete(tmp_path: Path) -> None:
    ckpt = CheckpointDir(str(tmp_path))
    for step in (10, 20, 30):
        save(ckpt, step, keep=2)
    assert ckpt.complete_steps() == [20, 30]
    ckpt.begin(40)  # a save in flight: nothing is removed for it...
    ckpt.write_part(40, SHARED_PART, state(40))
    assert ckpt.complete_steps() == [20, 30]
    assert ckpt.latest_step() == 30
    ckpt.mark_complete(40, 1, [SHARED_PART])  # ...until it is complete
    ckpt.prune(2, 40)
    assert ckpt.complete_steps() == [30, 40]
    assert ckpt.latest_step() == 40


def test_keep_one_and_keep_all(tmp_path: Path) -> None:
    one, every = CheckpointDir(str(tmp_path / "one")), CheckpointDir(str(tmp_path / "all"))
    for step in range(1, 5):
        save(one, step, keep=1)
        save(every, step, keep=None)
    assert one.complete_steps() == [4]
    assert every.complete_steps() == [1, 2, 3, 4]


def test_newer_folders_are_left_alone_and_latest_falls_back_to_the_highest_complete(tmp_path: Path) -> None:
    ckpt = CheckpointDir(str(tmp_path))
    save(ckpt, 5)
    ckpt.begin(9)  # another rank may be writing here
    save(ckpt, 7, keep=1)
    assert ckpt.steps() == [7, 9]
    (tmp_path / "latest").write_text("step-000000009\n")  # names an incomplete one
    assert ckpt.latest_step() == 7


def test_saving_over_a_complete_step_unmarks_it_first(tmp_path: Path) -> None:
    ckpt = CheckpointDir(str(tmp_path))
    save(ckpt, 3)
    ckpt.begin(3)
    assert not ckpt.is_complete(3)


def test_locate_takes_a_step_folder_or_a_checkpoint_dir(tmp_path: Path) -> None:
    ckpt = CheckpointDir(str(tmp_path))
    save(ckpt, 4)
    assert locate(ckpt.folder(4))[1] == 4
    found, step = locate(str(tmp_path))
    assert (found.root, step) == (ckpt.root, None)
    with pytest.raises(CheckpointError, match="no such folder"):
        locate(str(tmp_path / "nowhere"))


def test_an_incomplete_folder_is_refused_by_name(tmp_path: Path) -> None:
    ckpt = CheckpointDir(str(tmp_path))
    ckpt.begin(2)
    with pytest.raises(CheckpointError, match=r"step-000000002: not a complete checkpoint \(no complete.json\)"):
        ckpt.manifest(2)


# -- what a bad file says ----------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_corrupt_part_is_one_line_naming_the_file(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "shared.pt"
    save_atomic(str(path), state(1))
    data = path.read_bytes()
    path.write_bytes({"truncated": data[: len(data) // 2], "garbage": b"not a checkpoint", "empty": b""}[damage])
    with pytest.raises(CheckpointError) as raised:
        load_part(str(path))
    message = str(raised.value)
    assert message.startswith(f"{path}: truncated or corrupt, not a whole torch.save file (")
    assert "\n" not in message


class Payload:
    """Unpickling this runs code: it creates a file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (self.marker,))


def test_weights_only_refuses_an_arbitrary_pickle_without_running_it(tmp_path: Path) -> None:
    path, marker = tmp_path / "shared.pt", tmp_path / "ran"
    torch.save({"model": Payload(str(marker))}, path)
    with pytest.raises(CheckpointError) as raised:
        load_part(str(path))
    message = str(raised.value)
    assert message.startswith(f"{path}: refused by torch.load(weights_only=True): ")
    assert f"it holds {os.mkdir.__module__}.mkdir, which is neither a tensor nor a plain container" in message
    assert "\n" not in message
    assert not marker.exists()


def test_a_missing_part_of_a_complete_checkpoint_is_named(tmp_path: Path) -> None:
    ckpt = CheckpointDir(str(tmp_path))
    save(ckpt, 1)
    os.unlink(ckpt.part_path(1, rank_part(0)))
    with pytest.raises(CheckpointError, match=r"rank-00000.pt: missing from a checkpoint marked complete"):
        ckpt.load_part(1, rank_part(0))


# -- the writer thread -------------------------------------------------------------------------------


def test_a_writer_error_is_raised_in_the_training_thread_at_its_next_call() -> None:
    writer = AsyncWriter()

    def fail() -> None:
        raise OSError(28, "No space left on device")

    writer.submit(fail)
    with pytest.raises(OSError, match="No space left on device"):
        writer.wait()
    with pytest.raises(RuntimeError, match="writer stopped after an earlier error: OSError"):
        writer.submit(lambda: None)  # never silently dropped
    writer.close()  # raised once already: closing does not raise it again


def test_an_error_nobody_asked_about_is_raised_at_close() -> None:
    writer = AsyncWriter()
    writer.submit(lambda: 1 / 0)  # type: ignore[func-returns-value]
    with pytest.raises(ZeroDivisionError):
        writer.close()


def test_a_save_due_while_one_is_writing_waits_for_it_and_both_happen() -> None:
    writer = AsyncWriter()
    release, order = threading.Event(), []
    writer.submit(lambda: (release.wait(30), order.append("first")))
    second_queued = threading.Event()

    def trainer() -> None:
        writer.submit(lambda: order.append("second"))
        second_queued.set()

    thread = threading.Thread(target=trainer)
    thread.start()
    assert not second_queued.wait(0.3)  # held while the first is being written
    release.set()
    thread.join(30)
    writer.close()
    assert order == ["first", "second"]


def test_synchronous_mode_runs_the_job_in_the_callers_thread() -> None:
    writer = AsyncWriter(asynchronous=False)
    threads: list[str] = []
    writer.submit(lambda: threads.append(threading.current_thread().name))
    assert threads == [threading.current_thread().name]
    with pytest.raises(ZeroDivisionError):
        writer.submit(lambda: 1 / 0)  # type: ignore[func-returns-value]
    writer.close()
