"""The batching service: request threads enqueue jobs; worker threads run the model once per batch.

A job (id, input) goes into a bounded ``queue.Queue``; ``submit`` never waits (a full queue
raises QueueFull at once). Each worker takes the first job waiting, then whatever else arrives
within ``max_wait_ms`` (up to ``max_batch_size`` jobs), stacks the inputs, runs the model once
under ``torch.inference_mode()`` and stores every row of the output.

Each worker is a ``launcher.runtime.threads.BackgroundLoop`` whose step blocks on the queue
(``interval=0``, a get with a short timeout so that a stop is seen within ``POLL_S``): the
project's one thread pattern, with its bounded join and an error that kills a worker re-raised
in the owner by ``check()``. The model is built in the worker's own thread by its first step, one
copy per worker, on the service's device (``start()`` returns once every worker has its copy).
That is the one place where a loop step runs CUDA (the pattern forbids it in a training process,
whose training thread owns the device and may still fork data-loader workers): here the workers
are the device's only users and nothing forks.

Shutdown (``stop``): new jobs are refused (ServiceClosed); the workers go on until every job
is done or ``drain_timeout`` s have passed (a paused service stays paused); then every worker is
joined (after its current batch), and the jobs still queued are rejected (their outcome says so:
HTTP 503).
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import torch
from results import ResultStore
from service import Outcome, QueueFull, ServiceClosed
from torch import nn

from launcher.runtime.threads import BackgroundLoop

POLL_S = 0.05  # how long an idle worker blocks on the queue before it looks at stop and pause requests
REJECTED = "rejected: the service stopped before running this job"


@dataclass(frozen=True)
class BatchingConfig:
    workers: int = 1
    max_batch_size: int = 32
    max_wait_ms: float = 5.0
    queue_size: int = 256
    max_results: int = 10_000  # finished, unfetched results kept (the oldest evicted beyond)


@dataclass(frozen=True)
class Job:
    job_id: str
    inputs: torch.Tensor


class PauseGate:
    """Holds workers between batches, for maintenance and for tests that need a full queue.

    ``pause()`` returns once every worker is held, so nothing is taken from the queue after it.
    """

    def __init__(self, workers: int) -> None:
        self._workers = workers
        self._changed = threading.Condition()
        self._paused = False
        self._held = 0

    def pause(self, timeout: float = 5.0) -> None:
        with self._changed:
            self._paused = True
            self._changed.notify_all()
            if not self._changed.wait_for(lambda: self._held == self._workers, timeout):
                raise TimeoutError(f"{self._workers - self._held} worker(s) still running a batch after {timeout} s")

    def resume(self) -> None:
        with self._changed:
            self._paused = False
            self._changed.notify_all()

    def hold(self) -> bool:
        """In a worker: while paused, count as held and wait (at most POLL_S); True if it was paused."""
        with self._changed:
            if not self._paused:
                return False
            self._held += 1
            self._changed.notify_all()
            self._changed.wait_for(lambda: not self._paused, POLL_S)
            self._held -= 1
            return True


class BatchingService:
    """``start()``, then ``submit``/``result``/``predict`` from any thread, then ``stop()``."""

    def __init__(self, build_model: Callable[[], nn.Module], device: torch.device, config: BatchingConfig) -> None:
        self.config = config
        self.device = device
        self._build_model = build_model
        self._queue: queue.Queue[Job] = queue.Queue(maxsize=config.queue_size)
        self._results = ResultStore(config.max_results)
        self._gate = PauseGate(config.workers)
        self._closed = threading.Event()
        self._submitting = threading.Lock()
        self._loops: list[BackgroundLoop] = []
        self.batches = 0  # batches run, and jobs in them: the mean batch size tells whether batching happens
        self.jobs_run = 0
        self.rejected = 0  # jobs left unrun at shutdown
        self._counts = threading.Lock()

    def start(self) -> BatchingService:
        """Start the workers; returns once each has built its model (or raises the error a build failed with)."""
        workers = [_Worker(self) for _ in range(self.config.workers)]
        for index, worker in enumerate(workers):
            self._loops.append(BackgroundLoop(f"inference-worker-{index}", worker.step, interval=0).start())
        try:
            for worker, loop in zip(workers, self._loops, strict=True):
                while not worker.ready.wait(POLL_S):
                    loop.check()
        except BaseException:
            self.stop(drain_timeout=0)
            raise
        return self

    def submit(self, inputs: torch.Tensor) -> str:
        job_id = uuid.uuid4().hex
        with self._submitting:  # never a job enqueued after stop() closed the service
            if self._closed.is_set():
                raise ServiceClosed("the service is shutting down")
            self._results.add_pending(job_id)  # before the queue: a worker may finish it at once
            try:
                self._queue.put_nowait(Job(job_id, inputs))
            except queue.Full:
                self._results.forget(job_id)
                raise QueueFull(f"the queue is full ({self.config.queue_size} jobs waiting)") from None
        return job_id

    def result(self, job_id: str, wait: float) -> Outcome | None:
        return self._results.take(job_id, wait)

    def predict(self, inputs: torch.Tensor, timeout: float) -> Outcome | None:
        return self._results.take(self.submit(inputs), timeout)

    def queued(self) -> int:
        return self._queue.qsize()

    def pause(self, timeout: float = 5.0) -> None:
        """Hold every worker before its next batch (returns once all are held)."""
        self._gate.pause(timeout)

    def resume(self) -> None:
        self._gate.resume()

    def check(self) -> None:
        """Re-raise the error a worker died of, if any."""
        for loop in self._loops:
            loop.check()

    def stop(self, drain_timeout: float = 2.0, join_timeout: float = 10.0) -> None:
        """Refuse new jobs, run what is queued for up to ``drain_timeout`` s, join the workers, reject the rest."""
        with self._submitting:
            self._closed.set()
        self._results.wait_idle(drain_timeout)  # a paused service stays paused: its queued jobs wait, then go
        try:
            for loop in self._loops:
                loop.request_stop()
            for loop in self._loops:
                loop.stop(join_timeout)  # re-raises the error a worker died of
        finally:
            self._loops.clear()
            while not self._queue.empty():  # no worker takes jobs any more: those left are rejected below
                self._queue.get_nowait()
            self.rejected += self._results.finish_pending(Outcome(None, REJECTED, rejected=True))

    def _record(self, jobs: int) -> None:
        with self._counts:
            self.batches += 1
            self.jobs_run += jobs


class _Worker:
    """One worker's state: its own copy of the model, built in its thread by the first step."""

    def __init__(self, service: BatchingService) -> None:
        self._service = service
        self._model: nn.Module | None = None
        self.ready = threading.Event()

    def step(self) -> None:
        service = self._service
        if self._model is None:
            self._model = service._build_model().to(service.device)
            self.ready.set()
            return
        if service._gate.hold():
            return
        batch = self._take_batch(service._queue, service.config)
        if not batch:
            return
        service._record(len(batch))  # before the results: whoever has one sees its batch counted
        try:
            with torch.inference_mode():
                inputs = torch.stack([job.inputs for job in batch]).to(service.device)
                outputs = self._model(inputs).cpu()
        except Exception as error:  # the model failed on this batch: its jobs say so, the worker goes on
            message = f"the model failed: {type(error).__name__}: {error}"
            service._results.put((job.job_id, Outcome(None, message)) for job in batch)
        else:
            service._results.put((job.job_id, Outcome(row)) for job, row in zip(batch, outputs.unbind(0), strict=True))

    @staticmethod
    def _take_batch(jobs: queue.Queue[Job], config: BatchingConfig) -> list[Job]:
        """The first job (waiting at most POLL_S for it), then what arrives within max_wait_ms after it."""
        try:
            batch = [jobs.get(timeout=POLL_S)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + config.max_wait_ms / 1000
        while len(batch) < config.max_batch_size:
            remaining = deadline - time.monotonic()
            try:
                batch.append(jobs.get(timeout=remaining) if remaining > 0 else jobs.get_nowait())
            except queue.Empty:
                break
        return batch
