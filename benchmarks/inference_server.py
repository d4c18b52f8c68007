"""Inference service: the batching server against the naive one (model run in the request thread).

Both are ``examples/inference_server/serve.py`` in a process of its own (``--mode batch`` and
``--mode inline``), serving the same MLP (256 inputs, 4 hidden layers of 4096, 10 outputs: 51.4 M
parameters, 206 MB; on one core a forward pass of 32 inputs costs a few times one of a single
input, not 32 times), with ``--torch-threads 1`` on both sides, stated because torch's default
(every core per forward) would let the naive server's 16 concurrent forwards oversubscribe the
CPUs. The batching side runs one worker thread per usable CPU (each its own model copy, as the
naive server's request threads spread over the CPUs too), batches of up to 32, waiting at most 5 ms
for a batch to fill. On 2 cores one worker leaves a core to the HTTP work and the clients: 1.74x
there (5 runs), against 2.01x with two.

Each run: start the server, wait until ``/health`` answers, 64 warm-up requests, then
``--requests`` ``POST /predict`` requests from ``--clients`` client threads of this process
(each request a new connection, as the server speaks HTTP/1.0), each answer checked against the
model run here on the same input (``torch.allclose``); then SIGTERM, and the run ends once the
server exited and is gone. Figures: requests/s over the measured requests, p50 and p99 latency
(request sent to answer read), and the mean batch size the server reports. Runs of the two
servers alternate (``--runs``, no run dropped: each has its own warm-up). Target: batching at
least 2x the naive requests/s, with a p99 no worse.

    python -m benchmarks.inference_server [--runs N] [--quick] [--json PATH] [--requests N] [--clients N]
"""

from __future__ import annotations

import functools
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil
import torch

from benchmarks.common import (
    PYTHON,
    JobError,
    Variant,
    expect_success,
    finish,
    interleave,
    markdown_table,
    parser,
    prepare,
    ratio,
    run_job,
    summary,
    verdict,
)

NAME = "inference_server"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "inference_server"
SPEC_OPTIONS = ("--input-size", "256", "--hidden", "4096", "--layers", "4", "--seed", "0")
WORKERS = len(os.sched_getaffinity(0))  # one batching worker per usable CPU
SERVER_OPTIONS = ("--torch-threads", "1", "--workers", str(WORKERS), "--max-batch-size", "32", "--max-wait-ms", "5",
                  *SPEC_OPTIONS)
MODES = {"batching": "batch", "naive (model in the request thread)": "inline"}
THROUGHPUT_TARGET = 2.0
DISTINCT_INPUTS = 64
WARMUP_REQUESTS = 64
START_TIMEOUT_S = 120.0

sys.path.insert(0, str(EXAMPLE))
from mlp import ModelSpec, build_model  # noqa: E402  (the example's own model: the same weights as the server's)

SPEC = ModelSpec(input_size=256, hidden=4096, layers=4, seed=0)  # as SPEC_OPTIONS tell the server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Load:
    """The inputs, their expected outputs, and ``--clients`` threads sending ``POST /predict``."""

    def __init__(self, clients: int) -> None:
        self.clients = clients
        spec = SPEC
        generator = torch.Generator().manual_seed(1)
        inputs = torch.randn(DISTINCT_INPUTS, spec.input_size, generator=generator)
        with torch.inference_mode():
            self.expected = build_model(spec)(inputs)
        self.requests = [predict_request(json.dumps({"input": row.tolist()}).encode()) for row in inputs]

    def run(self, port: int, requests: int) -> tuple[float, list[float]]:
        """Send ``requests`` requests; (seconds from first to last, latencies); every answer checked."""
        latencies: list[float] = []
        answers: list[tuple[int, bytes]] = []
        errors: list[BaseException] = []
        lock = threading.Lock()
        per_client = [requests // self.clients + (i < requests % self.clients) for i in range(self.clients)]

        def client(index: int, count: int) -> None:
            mine, got = [], []
            try:
                for k in range(count):
                    which = (index * 7919 + k) % DISTINCT_INPUTS
                    started = time.perf_counter()
                    status, body = exchange(port, self.requests[which])
                    mine.append(time.perf_counter() - started)
                    if status != 200:
                        raise JobError(f"HTTP {status}: {body[:200]!r}")
                    got.append((which, body))
            except BaseException as error:
                errors.append(error)
            with lock:
                latencies.extend(mine)
                answers.extend(got)

        threads = [threading.Thread(target=client, args=(i, n)) for i, n in enumerate(per_client)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
        if errors:
            raise errors[0]
        for which, body in answers:
            output = torch.tensor(json.loads(body)["output"])
            if not torch.allclose(output, self.expected[which], atol=1e-5):
                raise JobError(f"wrong answer for input {which}: {output} != {self.expected[which]}")
        return seconds, latencies


def predict_request(body: bytes) -> bytes:
    return (b"POST /predict HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body))


def exchange(port: int, request: bytes) -> tuple[int, bytes]:
    """Send a prepared HTTP/1.0 request on a new connection; (status, body) once the server closed it.

    A raw socket rather than ``http.client``: the load generator shares the machine with the server,
    and the less CPU it takes per request, the more the figures say about the server.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
        connection.sendall(request)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise JobError(f"the server exited {proc.returncode} before serving")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                connection.close()
                return
        except OSError:
            time.sleep(0.05)  # not listening yet: a start-up poll, not a measurement
    raise JobError(f"the server did not answer on port {port} within {START_TIMEOUT_S:.0f} s")


def health(port: int) -> dict[str, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/health")
    document: dict[str, Any] = json.loads(connection.getresponse().read())
    connection.close()
    return document


def one_run(mode: str, load: Load, requests: int) -> dict[str, Any]:
    """Start a server in ``mode``, warm it up, time ``requests`` requests, stop it with SIGTERM."""
    port = free_port()
    figures: dict[str, Any] = {}

    def while_running(proc: subprocess.Popen[bytes], _tag: str) -> None:
        try:
            wait_ready(port, proc)
            load.run(port, WARMUP_REQUESTS)
            server = psutil.Process(proc.pid)
            before, cpu_before = health(port), sum(server.cpu_times()[:2])
            seconds, latencies = load.run(port, requests)
            after, cpu_after = health(port), sum(server.cpu_times()[:2])
            quantiles = statistics.quantiles(latencies, n=100)
            figures.update(requests_per_s=requests / seconds, p50_ms=quantiles[49] * 1000,
                           p99_ms=quantiles[98] * 1000, seconds=seconds,
                           server_cpu_ms=(cpu_after - cpu_before) / requests * 1000)
            if "batches" in after:
                batches = after["batches"] - before["batches"]
                figures["mean_batch"] = (after["jobs"] - before["jobs"]) / batches if batches else float("nan")
        finally:
            proc.send_signal(signal.SIGTERM)

    command = [PYTHON, str(EXAMPLE / "serve.py"), "--port", str(port), "--mode", mode, *SERVER_OPTIONS]
    ran = expect_success(run_job(command, timeout=START_TIMEOUT_S + 300, while_running=while_running),
                         " ".join(command))
    return {**figures, "server_seconds": ran.seconds}


def forward_ms(batch: int, repeats: int = 10) -> float:
    """Median time of one forward pass of ``batch`` inputs on one thread, as the server runs it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, inputs = build_model(SPEC), torch.randn(batch, SPEC.input_size)
        times = []
        with torch.inference_mode():
            for _ in range(repeats + 2):
                started = time.perf_counter()
                model(inputs)
                times.append(time.perf_counter() - started)
        return statistics.median(times[2:]) * 1000
    finally:
        torch.set_num_threads(threads)


def measure(runs: int, requests: int, clients: int) -> dict[str, Any]:
    forward = {str(batch): forward_ms(batch) for batch in (1, 16, 32)}
    load = Load(clients)
    variants = [Variant(label, functools.partial(one_run, mode, load, requests), runs, warmup=0)
                for label, mode in MODES.items()]
    kept = interleave(variants, progress=NAME)
    figures = ("requests_per_s", "p50_ms", "p99_ms", "server_cpu_ms", "mean_batch")
    sides = {label: {key: summary([run[key] for run in kept[label]]) for key in figures if key in kept[label][0]}
             for label in MODES}
    batching, naive = (sides[label] for label in MODES)
    speedup = ratio(batching["requests_per_s"]["median"], naive["requests_per_s"]["median"])
    p99_ratio = ratio(batching["p99_ms"]["median"], naive["p99_ms"]["median"])
    return {"requests": requests, "clients": clients, "server_options": list(SERVER_OPTIONS),
            "model": vars(SPEC), "forward_ms": forward, "sides": sides, "runs": kept, "throughput_ratio": speedup,
            "p99_ratio": p99_ratio, "met": speedup >= THROUGHPUT_TARGET and p99_ratio <= 1.0}


def render(data: dict[str, Any]) -> str:
    rows = []
    for label, side in data["sides"].items():
        batch = side.get("mean_batch")
        rows.append([label, f"{side['requests_per_s']['median']:.0f}", f"{side['p50_ms']['median']:.1f}",
                     f"{side['p99_ms']['median']:.1f}", f"{side['server_cpu_ms']['median']:.2f}",
                     f"{batch['median']:.1f}" if batch else "1"])
    runs = next(iter(data["sides"].values()))["requests_per_s"]["runs"]
    head = (f"## Inference server: {data['requests']} requests from {data['clients']} client threads, "
            f"medians of {runs} runs per side (interleaved); torch threads 1 in the server")
    forward = data["forward_ms"]
    cost = (f"One forward pass on one thread: {forward['1']:.1f} ms for 1 input, {forward['16']:.1f} ms for 16, "
            f"{forward['32']:.1f} ms for 32.")
    return (f"{head}\n\n{cost}\n\n"
            + markdown_table(["server", "requests/s", "p50 (ms)", "p99 (ms)", "server CPU per request (ms)",
                              "mean batch"], rows)
            + f"\n\nTarget: batching >= {THROUGHPUT_TARGET:.0f}x the naive requests/s with a p99 no worse: "
            f"{data['throughput_ratio']:.2f}x, p99 {data['p99_ratio']:.2f}x the naive one, {verdict(data['met'])}.")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    options = parser(__doc__.splitlines()[0])
    options.add_argument("--requests", type=int, default=2000, help="measured requests per run (default 2000)")
    options.add_argument("--clients", type=int, default=16, help="concurrent client threads (default 16)")
    args = options.parse_args(argv)
    data = measure(prepare(args), args.requests, args.clients)
    print(render(data))
    return finish(NAME, data, args, argv)


if __name__ == "__main__":
    sys.exit(main())
