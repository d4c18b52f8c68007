"""The counters the training thread updates and the monitor thread reads: consistent under concurrent updates,
the loop's own counts preferred to the loaders', CUDA values read by the training thread only."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import torch

from launcher.runtime.meters import Meters, batch_length


def test_concurrent_updates_are_all_counted_and_every_reading_is_consistent():
    meters = Meters()
    threads, per_thread = 4, 5000
    readings = []
    done = threading.Event()

    def train() -> None:
        for _ in range(per_thread):
            meters.batch(samples=2, waited=0.001)

    def watch() -> None:
        while not done.is_set():
            readings.append(meters.read())

    watcher = threading.Thread(target=watch)
    watcher.start()
    workers = [threading.Thread(target=train) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    done.set()
    watcher.join()
    final = meters.read()
    assert final.step == threads * per_thread and final.samples == 2 * threads * per_thread
    assert final.data_wait_seconds == pytest.approx(threads * per_thread * 0.001)
    # Each reading was taken under the lock: batches and samples always moved together.
    assert readings and all(reading.samples == 2 * reading.step for reading in readings)


def test_the_loops_own_steps_and_samples_win_over_the_loaders_counts():
    meters = Meters()
    for _ in range(6):
        meters.batch(samples=8, waited=0.0)
    assert (meters.read().step, meters.read().samples) == (6, 48)  # no ctx.step yet: the loaders count
    meters.step(1, None)
    assert (meters.read().step, meters.read().samples) == (1, 48)  # steps from the loop, samples still the loaders'
    meters.step(2, samples=10)
    assert (meters.read().step, meters.read().samples) == (3, 10)


def test_logged_numbers_cpu_tensors_and_numpy_scalars_become_floats():
    meters = Meters()
    meters.log({"loss": torch.tensor(0.25), "lr": 0.1, "acc": __import__("numpy").float32(0.5), "n": 3})
    assert meters.read().values == {"loss": 0.25, "lr": 0.1, "acc": 0.5, "n": 3.0}


def test_a_value_that_is_no_number_is_refused_with_its_name():
    with pytest.raises(TypeError, match=r"ctx.log\(name=...\): expected a number .* got str"):
        Meters().log({"name": "resnet"})
    with pytest.raises(TypeError, match=r"ctx.log\(loss=...\)"):
        Meters().log({"loss": torch.ones(3)})


class _FakeCudaTensor:
    """What the meters see of a CUDA tensor: a device, detach() and item(); item() counts its calls."""

    device = torch.device("cuda", 0)

    def __init__(self, value: float, reads: list[str]) -> None:
        self.value = value
        self.reads = reads

    def detach(self) -> _FakeCudaTensor:
        return self

    def item(self) -> float:
        self.reads.append(threading.current_thread().name)
        return self.value


def test_cuda_values_are_read_by_the_training_thread_at_most_once_per_interval(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr("launcher.runtime.meters.time.monotonic", lambda: clock[0])
    meters = Meters(read_every=1.0)
    reads: list[str] = []
    meters.log({"loss": _FakeCudaTensor(0.5, reads)})
    assert reads == [] and meters.read().values == {}  # kept, not read: reading would synchronise
    clock[0] += 0.5
    meters.step(1, None)
    meters.log({"loss": _FakeCudaTensor(0.4, reads)})
    assert reads == []
    clock[0] += 0.6  # one interval since the last read
    meters.step(1, None)
    assert reads == [threading.current_thread().name] and meters.read().values == {"loss": 0.4}
    meters.log({"loss": 0.3})  # a plain number replaces a kept tensor at once
    clock[0] += 5
    meters.step(1, None)
    assert meters.read().values == {"loss": 0.3} and len(reads) == 1


def test_epochs_give_the_total_unless_the_loop_set_its_own():
    meters = Meters()
    meters.set_epoch(0, total_steps=40)
    assert (meters.read().epoch, meters.read().total_steps) == (0, 40)
    meters.set_total_steps(1000)
    meters.set_epoch(1, total_steps=40)
    assert (meters.read().epoch, meters.read().total_steps) == (1, 1000)


@pytest.mark.parametrize(("batch", "expected"), [
    (torch.zeros(5, 3), 5),
    ((torch.zeros(7, 2), torch.zeros(7)), 7),
    ([{"x": torch.zeros(4, 1)}], 4),
    ({"input_ids": torch.zeros(6, 9), "labels": torch.zeros(6)}, 6),
    (["a", "b", "c"], 32),  # no tensor: the loader's batch size
    (torch.tensor(1.0), 32),  # a 0-d tensor has no batch dimension
])
def test_batch_length_is_the_first_dimension_of_the_first_tensor(batch: Any, expected: int):
    assert batch_length(batch, 32) == expected
