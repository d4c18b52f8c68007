"""Serve the example MLP over HTTP until SIGTERM or SIGINT; one model process per GPU under the launcher.

    python examples/inference_server/serve.py --port 8000
    python -m launcher --nprocs 2 examples/inference_server/serve.py --port 8000   # ports 8000 and 8001

Each process serves on ``--port`` + LOCAL_RANK (``--port 0``: any free port, printed) with its
model on ``cuda:LOCAL_RANK`` when there is such a GPU, else on the CPU. A stop signal shuts it down
gracefully (see ``server.InferenceServer.stop``) and it exits 0.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence

import torch
from batching import BatchingConfig, BatchingService
from mlp import ModelSpec
from server import InferenceServer, ServerConfig


def options(argv: Sequence[str] | None) -> argparse.Namespace:
    spec, batching = ModelSpec(), BatchingConfig()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_at_least(0), default=8000, help="base port; each process adds its LOCAL_RANK")
    p.add_argument("--mode", choices=("batch", "inline"), default="batch",
                   help="inline: run the model in the request thread (the naive baseline, for comparison)")
    p.add_argument("--device", default="auto", help="auto (cuda:LOCAL_RANK if there is one, else cpu), cpu, cuda:N")
    p.add_argument("--torch-threads", type=_at_least(1), help="torch.set_num_threads (default: torch's)")
    p.add_argument("--workers", type=_at_least(1), default=batching.workers)
    p.add_argument("--max-batch-size", type=_at_least(1), default=batching.max_batch_size)
    p.add_argument("--max-wait-ms", type=_seconds, default=batching.max_wait_ms)
    p.add_argument("--queue-size", type=_at_least(1), default=batching.queue_size)
    p.add_argument("--max-results", type=_at_least(1), default=batching.max_results)
    p.add_argument("--drain-timeout", type=_seconds, default=ServerConfig.drain_timeout)
    p.add_argument("--input-size", type=_at_least(1), default=spec.input_size)
    p.add_argument("--hidden", type=_at_least(1), default=spec.hidden)
    p.add_argument("--layers", type=_at_least(1), default=spec.layers)
    p.add_argument("--seed", type=int, default=spec.seed)
    return p.parse_args(argv)


def _at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text}")
        return value

    return parse


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def pick_device(requested: str, local_rank: int) -> torch.device:
    if requested != "auto":
        return torch.device(requested)
    if torch.cuda.is_available() and local_rank < torch.cuda.device_count():
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def main(argv: Sequence[str] | None = None) -> int:
    args = options(argv)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    spec = ModelSpec(args.input_size, args.hidden, args.layers, seed=args.seed)
    batching = BatchingConfig(args.workers, args.max_batch_size, args.max_wait_ms, args.queue_size, args.max_results)
    config = ServerConfig(args.host, args.port + local_rank if args.port else 0, args.mode, batching,
                          args.drain_timeout)
    stop = threading.Event()
    for name in ("SIGTERM", "SIGINT"):
        signal.signal(getattr(signal, name), lambda _number, _frame: stop.set())
    try:
        server = InferenceServer(spec, pick_device(args.device, local_rank), config).start()
    except OSError as error:  # the port: in use, or not ours to bind
        print(f"serve.py: cannot serve on {args.host}:{config.port}: {error.strerror} (choose another --port)",
              file=sys.stderr)
        return 2
    port = server.port
    print(f"rank {local_rank} serving on http://{args.host}:{port} ({args.mode}, device "
          f"{server.service.device}, torch threads {torch.get_num_threads()})", flush=True)
    try:
        while not stop.wait(0.5):
            server.check()  # a worker that died stops the server: the error is raised here
    finally:
        server.stop()
    service = server.service
    ran = (f"{service.jobs_run} jobs in {service.batches} batches, {service.rejected} rejected; "
           if isinstance(service, BatchingService) else "")
    print(f"rank {local_rank} stopped: {ran}port {port} closed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
