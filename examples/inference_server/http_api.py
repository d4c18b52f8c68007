"""The HTTP API, on the standard library's ``ThreadingHTTPServer``: one thread per request.

    POST /jobs           {"input": [x1, ..., xN]}  202 {"id": ...}, Location: /result/<id>
    GET  /result/<id>    200 {"id", "output"} once done (then forgotten); 202 {"id", "status": "pending"};
                         ?wait=S waits up to S seconds (at most MAX_WAIT_S) for it
    POST /predict        {"input": [...]}  200 {"output": [...]}: submit and wait in one request
    GET  /health         200 {"status": "ok", "queued": ...}

Errors are JSON ``{"error": "..."}``: 400 malformed JSON or an input of the wrong shape or type,
404 unknown path or job id (never submitted, fetched already, or evicted), 413 a body over
MAX_BODY bytes, 429 a full queue (with ``Retry-After``), 500 the model failed, 503 shutting down,
504 ``/predict`` timed out. A request thread only parses, validates and hands the input to the
service: with the batching service it never runs the model.

HTTP/1.0, one request per connection: a closed server has no idle keep-alive connection whose
thread it would wait for. ``block_on_close`` with non-daemon request threads makes
``server_close()`` join every request thread.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import torch
from service import Outcome, QueueFull, Refused, Service, ServiceClosed, UnknownJob

from launcher.runtime.threads import BackgroundLoop

MAX_BODY = 1 << 20
MAX_WAIT_S = 30.0
PREDICT_TIMEOUT_S = 30.0
RETRY_AFTER_S = 1
RESULT_PATH = re.compile(r"/result/([0-9a-f]{1,64})")


class BadRequest(Exception):
    """The request is malformed; the message tells the client what to fix (HTTP 400)."""


def parse_input(body: bytes, input_size: int) -> torch.Tensor:
    """``{"input": [N numbers]}`` as a float32 tensor of shape ``(N,)``; BadRequest otherwise."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadRequest(f"malformed JSON: {error}") from None
    if not isinstance(document, dict) or "input" not in document:
        raise BadRequest('expected a JSON object {"input": [numbers]}')
    values = document["input"]
    if not isinstance(values, list) or len(values) != input_size:
        got = f"a list of {len(values)}" if isinstance(values, list) else f"a {type(values).__name__}"
        raise BadRequest(f"input: expected a list of {input_size} numbers, got {got}")
    for index, value in enumerate(values):
        if type(value) not in (int, float):  # bool, str, None, list...: a clear message for the first one
            raise BadRequest(f"input[{index}]: expected a number, got {json.dumps(value)}")
    try:
        inputs = torch.tensor(values, dtype=torch.float32)
    except (OverflowError, RuntimeError):  # an integer beyond any float
        inputs = torch.tensor([math.inf])
    if not bool(torch.isfinite(inputs).all()):
        raise BadRequest("input: expected finite numbers (no NaN, Infinity, or values beyond float32)")
    return inputs


class InferenceHTTPServer(ThreadingHTTPServer):
    daemon_threads = False  # joined by server_close() (block_on_close)
    request_queue_size = 128  # the listen backlog (socketserver's default, 5, resets bursts of clients)
    timeout = 0.1  # handle_request() returns after this long without a connection: the loop sees a stop

    def __init__(self, address: tuple[str, int], service: Service, input_size: int,
                 health: Callable[[], dict[str, Any]]) -> None:
        super().__init__(address, _Handler)
        self.service = service
        self.input_size = input_size
        self.health = health


class _Handler(BaseHTTPRequestHandler):
    server: InferenceHTTPServer
    timeout = 10.0  # a client that stops sending mid-request frees its thread after this long

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if path not in ("/jobs", "/predict"):
            return self._reply(HTTPStatus.NOT_FOUND, {"error": f"no such endpoint: POST {path}"})
        try:
            inputs = parse_input(self._body(), self.server.input_size)
            if path == "/jobs":
                job_id = self.server.service.submit(inputs)
                return self._reply(HTTPStatus.ACCEPTED, {"id": job_id}, {"Location": f"/result/{job_id}"})
            outcome = self.server.service.predict(inputs, PREDICT_TIMEOUT_S)
        except (BadRequest, Refused) as error:
            return self._refuse(error)
        if outcome is None:
            return self._reply(HTTPStatus.GATEWAY_TIMEOUT, {"error": f"no result within {PREDICT_TIMEOUT_S} s"})
        self._answer(outcome, {})

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/health":
            return self._reply(HTTPStatus.OK, self.server.health())
        match = RESULT_PATH.fullmatch(url.path)
        if match is None:
            return self._reply(HTTPStatus.NOT_FOUND, {"error": f"no such endpoint: GET {url.path}"})
        job_id = match.group(1)
        try:
            wait = _wait_seconds(parse_qs(url.query).get("wait", ["0"])[-1])
            outcome = self.server.service.result(job_id, wait)
        except (BadRequest, Refused) as error:
            return self._refuse(error)
        if outcome is None:
            return self._reply(HTTPStatus.ACCEPTED, {"id": job_id, "status": "pending"})
        self._answer(outcome, {"id": job_id})

    def _body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise BadRequest("a Content-Length header is required")
        if int(length) > MAX_BODY:
            raise _TooLarge(f"body of {length} bytes: at most {MAX_BODY}")
        return self.rfile.read(int(length))

    def _answer(self, outcome: Outcome, extra: dict[str, Any]) -> None:
        if outcome.output is not None:
            return self._reply(HTTPStatus.OK, {**extra, "output": outcome.output.tolist()})
        status = HTTPStatus.SERVICE_UNAVAILABLE if outcome.rejected else HTTPStatus.INTERNAL_SERVER_ERROR
        self._reply(status, {**extra, "error": outcome.error})

    def _refuse(self, error: Exception) -> None:
        status, headers = {
            BadRequest: (HTTPStatus.BAD_REQUEST, {}),
            _TooLarge: (HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {}),
            QueueFull: (HTTPStatus.TOO_MANY_REQUESTS, {"Retry-After": str(RETRY_AFTER_S)}),
            ServiceClosed: (HTTPStatus.SERVICE_UNAVAILABLE, {}),
            UnknownJob: (HTTPStatus.NOT_FOUND, {}),
        }[type(error)]
        self._reply(status, {"error": str(error)}, headers)

    def _reply(self, status: HTTPStatus, document: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a line per request would cost more than the request at a few thousand per second."""


class _TooLarge(BadRequest):
    """The body is over MAX_BODY (HTTP 413)."""


def _wait_seconds(text: str) -> float:
    try:
        wait = float(text)
    except ValueError:
        raise BadRequest(f"wait: expected seconds, got {text!r}") from None
    if not 0 <= wait <= MAX_WAIT_S:
        raise BadRequest(f"wait: expected 0 to {MAX_WAIT_S} seconds, got {text}")
    return wait


class HTTPFrontEnd:
    """The server's accept loop in a BackgroundLoop; ``stop()`` closes the port and joins every request thread."""

    def __init__(self, server: InferenceHTTPServer) -> None:
        self.server = server
        self._loop = BackgroundLoop("http-accept", server.handle_request, interval=0)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> HTTPFrontEnd:
        self._loop.start()
        return self

    def check(self) -> None:
        self._loop.check()

    def stop_accepting(self) -> None:
        """End the accept loop; connections already accepted are served, new ones wait in the backlog."""
        self._loop.stop()

    def close(self) -> None:
        """Close the port (connections still in the backlog are reset) and join every request thread."""
        self.server.server_close()
