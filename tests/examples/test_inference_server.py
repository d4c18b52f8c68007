"""The inference server example: answers under concurrent load, refusals, shutdown, and under the launcher.

In-process tests run the server on a free loopback port with a small MLP; the last test runs
``python -m launcher --nprocs 2 serve.py`` and stops it with SIGTERM (about 10 s on 2 busy cores).
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "inference_server"
sys.path.insert(0, str(EXAMPLE))

from batching import BatchingConfig, BatchingService  # noqa: E402
from mlp import ModelSpec, build_model  # noqa: E402
from server import InferenceServer, ServerConfig  # noqa: E402

SPEC = ModelSpec(input_size=16, hidden=32, layers=2, seed=3)
MODEL = build_model(SPEC)


def expected(inputs: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        output: torch.Tensor = MODEL(inputs.unsqueeze(0))[0]
    return output


def call(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, dict[str, str], Any]:
    """(status, headers, JSON document) of one request on a new connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body, {"Content-Type": "application/json"} if body is not None else {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), json.loads(response.read())
    finally:
        connection.close()


def body_of(inputs: torch.Tensor) -> bytes:
    return json.dumps({"input": inputs.tolist()}).encode()


def start(**batching: Any) -> InferenceServer:
    config = ServerConfig(port=0, batching=BatchingConfig(**batching), drain_timeout=5.0)
    return InferenceServer(SPEC, torch.device("cpu"), config).start()


@pytest.fixture
def served() -> Iterator[InferenceServer]:
    server = start(workers=2, max_batch_size=8, max_wait_ms=2.0)
    yield server
    server.stop()


def test_200_requests_from_16_clients_get_the_model_s_answers(served: InferenceServer) -> None:
    """Half through POST /jobs and GET /result?wait, half through POST /predict; each checked."""
    failures: list[str] = []

    def client(index: int) -> None:
        generator = torch.Generator().manual_seed(index)
        for k in range(200 // 16 + (index < 200 % 16)):
            inputs = torch.randn(SPEC.input_size, generator=generator)
            if k % 2:
                status, _, document = call(served.port, "POST", "/predict", body_of(inputs))
            else:
                status, headers, submitted = call(served.port, "POST", "/jobs", body_of(inputs))
                assert status == 202 and headers["Location"] == f"/result/{submitted['id']}", submitted
                status, _, document = call(served.port, "GET", f"/result/{submitted['id']}?wait=20")
            if status != 200 or not torch.allclose(torch.tensor(document["output"]), expected(inputs), atol=1e-6):
                failures.append(f"client {index} request {k}: {status} {document}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[:3]
    service = served.service
    assert isinstance(service, BatchingService) and service.jobs_run == 200


@pytest.mark.parametrize(("method", "path", "body", "status", "fragment"), [
    ("POST", "/jobs", b'{"input": [1, 2', 400, "malformed JSON"),
    ("POST", "/predict", b"\xff\xfe", 400, "malformed JSON"),
    ("POST", "/jobs", b"[1, 2, 3]", 400, 'expected a JSON object {"input": [numbers]}'),
    ("POST", "/jobs", json.dumps({"input": [0.5] * 15}).encode(), 400,
     "expected a list of 16 numbers, got a list of 15"),
    ("POST", "/predict", json.dumps({"input": [[0.5] * 16]}).encode(), 400, "got a list of 1"),
    ("POST", "/jobs", json.dumps({"input": "0.5"}).encode(), 400, "got a str"),
    ("POST", "/jobs", json.dumps({"input": [0.5] * 15 + ["x"]}).encode(), 400, 'input[15]: expected a number, got "x"'),
    ("POST", "/jobs", json.dumps({"input": [True] * 16}).encode(), 400, "input[0]: expected a number, got true"),
    ("POST", "/jobs", b'{"input": [' + b"1, " * 15 + b"NaN]}", 400, "expected finite numbers"),
    ("POST", "/jobs", json.dumps({"input": [10**400] * 16}).encode(), 400, "expected finite numbers"),
    ("GET", "/result/0123456789abcdef0123456789abcdef", None, 404, "unknown job id"),
    ("GET", "/result/0123?wait=soon", None, 400, "wait: expected seconds, got 'soon'"),
    ("GET", "/results", None, 404, "no such endpoint: GET /results"),
])
def test_bad_requests_get_a_4xx_with_a_json_error(served: InferenceServer, method: str, path: str,
                                                  body: bytes | None, status: int, fragment: str) -> None:
    got, _, document = call(served.port, method, path, body)
    assert (got, fragment in document["error"]) == (status, True), document


def test_a_result_is_fetched_once(served: InferenceServer) -> None:
    _, _, submitted = call(served.port, "POST", "/jobs", body_of(torch.ones(SPEC.input_size)))
    assert call(served.port, "GET", f"/result/{submitted['id']}?wait=20")[0] == 200
    assert call(served.port, "GET", f"/result/{submitted['id']}")[0] == 404


def test_a_full_queue_answers_429_and_the_held_jobs_run_as_one_batch() -> None:
    server = start(workers=1, max_batch_size=8, queue_size=4)
    try:
        service = server.service
        assert isinstance(service, BatchingService)
        service.pause()  # returns once the worker is held: nothing leaves the queue until resume()
        inputs = [torch.full((SPEC.input_size,), float(i)) for i in range(5)]
        accepted = [call(server.port, "POST", "/jobs", body_of(x)) for x in inputs[:4]]
        assert [status for status, _, _ in accepted] == [202] * 4
        status, headers, document = call(server.port, "POST", "/jobs", body_of(inputs[4]))
        assert (status, headers.get("Retry-After")) == (429, "1"), document
        assert "queue is full" in document["error"]
        pending = call(server.port, "GET", f"/result/{accepted[0][2]['id']}")
        assert pending[0] == 202 and pending[2]["status"] == "pending"
        service.resume()
        for x, (_, _, submitted) in zip(inputs, accepted, strict=False):
            status, _, document = call(server.port, "GET", f"/result/{submitted['id']}?wait=20")
            assert status == 200 and torch.allclose(torch.tensor(document["output"]), expected(x), atol=1e-6)
        assert (service.batches, service.jobs_run) == (1, 4)  # waiting in the queue together: one batch
    finally:
        server.stop()


def test_shutdown_rejects_queued_jobs_with_503_then_leaves_no_thread_and_closes_the_port() -> None:
    before = set(threading.enumerate())
    server = start(workers=2, queue_size=8)
    port = server.port
    service = server.service
    assert isinstance(service, BatchingService)
    service.pause()
    held = [call(port, "POST", "/jobs", body_of(torch.ones(SPEC.input_size)))[2]["id"] for _ in range(3)]
    waiter: list[tuple[int, Any]] = []
    waiting = threading.Thread(target=lambda: waiter.append(call(port, "GET", f"/result/{held[0]}?wait=25")[::2]))
    waiting.start()
    service.stop(drain_timeout=0)  # the service alone, paused (nothing runs); the HTTP side still answers
    waiting.join()
    assert waiter[0][0] == 503 and "rejected" in waiter[0][1]["error"]
    assert call(port, "GET", f"/result/{held[1]}")[0] == 503
    status, _, document = call(port, "POST", "/jobs", body_of(torch.ones(SPEC.input_size)))
    assert (status, document["error"]) == (503, "the service is shutting down")
    assert service.rejected == 3
    server.stop()
    assert set(threading.enumerate()) <= before, [t.name for t in set(threading.enumerate()) - before]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_shutdown_runs_the_queued_jobs_within_the_drain_timeout() -> None:
    server = start(workers=1, max_batch_size=2, queue_size=16)
    service = server.service
    assert isinstance(service, BatchingService)
    inputs = [torch.full((SPEC.input_size,), float(i)) for i in range(10)]
    service.pause()
    ids = [service.submit(x) for x in inputs]
    service.resume()
    server.stop()  # lets the worker empty the queue (5 batches of 2) before it joins it
    outcomes = [service.result(job_id, wait=0) for job_id in ids]
    assert service.rejected == 0
    assert all(o is not None and o.output is not None and torch.allclose(o.output, expected(x), atol=1e-6)
               for o, x in zip(outcomes, inputs, strict=True))


class _FailsOnNegative(torch.nn.Module):
    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if bool((inputs < 0).any()):
            raise ValueError("negative input")
        return inputs * 2


def test_a_model_error_fails_its_batch_and_the_worker_goes_on() -> None:
    service = BatchingService(_FailsOnNegative, torch.device("cpu"), BatchingConfig(workers=1)).start()
    try:
        failed = service.predict(-torch.ones(4), timeout=20)
        assert failed is not None and failed.output is None and not failed.rejected
        assert failed.error == "the model failed: ValueError: negative input"
        answered = service.predict(torch.ones(4), timeout=20)
        assert answered is not None and answered.output is not None and answered.output.tolist() == [2.0] * 4
        service.check()  # the worker did not die of it
    finally:
        service.stop()


def test_the_inline_baseline_answers_the_same_api() -> None:
    server = InferenceServer(SPEC, torch.device("cpu"), ServerConfig(port=0, mode="inline")).start()
    try:
        inputs = torch.arange(SPEC.input_size, dtype=torch.float32)
        _, _, submitted = call(server.port, "POST", "/jobs", body_of(inputs))
        for status, _, document in (call(server.port, "GET", f"/result/{submitted['id']}"),
                                    call(server.port, "POST", "/predict", body_of(inputs))):
            assert status == 200 and torch.allclose(torch.tensor(document["output"]), expected(inputs), atol=1e-6)
    finally:
        server.stop()


def _two_free_ports() -> int:
    """A port P such that P and P + 1 are free now (the launcher's ranks serve on base + LOCAL_RANK)."""
    for _ in range(20):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            base = first.getsockname()[1]
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", base + 1))
                except OSError:
                    continue
        return int(base)
    raise AssertionError("no two consecutive free ports")


@pytest.mark.timeout(120)
def test_launcher_serves_one_process_per_rank_on_its_own_port_and_stops_on_sigterm(
        run_env: dict[str, str], token: str) -> None:
    base = _two_free_ports()
    model = ("--input-size", "16", "--hidden", "32", "--layers", "2", "--seed", "3")
    process = subprocess.Popen(
        [sys.executable, "-m", "launcher", "--nprocs", "2", str(EXAMPLE / "serve.py"), "--port", str(base), *model],
        env=run_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    lines: list[str] = []
    try:
        for line in process.stdout:
            lines.append(line)
            if sum("serving on" in seen for seen in lines) == 2:
                break
        output = "".join(lines)
        for rank in (0, 1):
            assert f"rank {rank} serving on http://127.0.0.1:{base + rank} " in output, output
            inputs = torch.full((SPEC.input_size,), float(rank))
            status, _, document = call(base + rank, "POST", "/predict", body_of(inputs))
            assert status == 200 and torch.allclose(torch.tensor(document["output"]), expected(inputs), atol=1e-6)
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = "".join(lines) + rest
    assert process.returncode == 128 + signal.SIGTERM, output
    for rank in (0, 1):  # each rank shut down through its own handler, not killed
        assert f"rank {rank} stopped: " in output and f"port {base + rank} closed" in output, output
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", base + rank), timeout=5).close()
