"""The worker's HTTP API: KServe v2 (health, metadata, infer), /metrics, and the authenticated admin API.

Routes (KServe v2 "Predict Protocol", as Triton implements it):
  GET  /v2/health/live, /v2/health/ready, /v2, /v2/models/canary, /v2/models/canary/ready
  POST /v2/models/canary/infer           JSON tensors in, JSON tensors out
  GET  /v1/models, POST /v1/completions  OpenAI-compatible (vLLM, SGLang); see openai.py
  GET  /metrics                          Prometheus text (see metrics.py)
  GET|POST /admin/fault                  `Authorization: Bearer <token>`; see faults.py
Errors follow KServe: a JSON object `{"error": "..."}` with a 4xx/5xx status.
"""

from __future__ import annotations

import hmac
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

import numpy as np

from gpuwarden.worker import faults as faultmod
from gpuwarden.worker import openai
from gpuwarden.worker.faults import FaultState
from gpuwarden.worker.metrics import WorkerMetrics
from gpuwarden.worker.model import IN_FEATURES, INPUT, MODEL_NAME, OUT_FEATURES, OUTPUT
from gpuwarden.worker.runtime import Engine

MAX_BODY = 1 << 20
# vLLM's API server leaves these out of http_requests_total (its Instrumentator's excluded_handlers), so
# request rates count inference traffic, not scrapes and probes.
UNCOUNTED = ("/metrics", "/v2/health/live", "/v2/health/ready", "/admin/fault")
WRONG_OFFSET = 0.05  # far outside the canary tolerance (1e-4), small enough to look plausible
Reply = tuple[int, dict[str, Any] | bytes]


class WorkerApp:
    def __init__(
        self,
        engine: Engine,
        metrics: WorkerMetrics,
        faults: FaultState,
        token: str | None,
        log: logging.Logger,
        max_concurrency: int,
    ) -> None:
        self.engine, self.metrics, self.faults, self.token, self.log = engine, metrics, faults, token, log
        self.slots = threading.Semaphore(max_concurrency)
        self.crash = threading.Event()  # set by the crash fault; the main loop exits the process

    def handle(self, method: str, path: str, route: str, headers: Any, body: bytes) -> Reply:
        """Answer one request; `route` is `route(path)`."""
        if route == "/metrics" and method == "GET":
            return 200, self.metrics.render()
        if route == "/admin/fault":
            return self.admin(method, headers, body)
        if route.startswith(("/v2", "/v1")):
            self.faults.wait_while_hung()
        if method == "GET" and route == "/v1/models":
            return 200, openai.models()
        if method == "POST" and route == "/v1/completions":
            return self.complete(body)
        if method == "GET" and route in ("/v2/health/live", "/v2/health/ready"):
            return 200, {"live": True} if route.endswith("live") else {"ready": True}
        if method == "GET" and route == "/v2":
            return 200, {"name": "gpuwarden-worker", "version": "1", "extensions": []}
        if route.startswith("/v2/models/") and path.split("/")[3] != MODEL_NAME:
            return 404, {"error": f"unknown model '{path.split('/')[3]}'; this worker serves '{MODEL_NAME}'"}
        if method == "GET" and route == "/v2/models/{model}":
            return 200, self.model_metadata()
        if method == "GET" and route == "/v2/models/{model}/ready":
            return 200, {"name": MODEL_NAME, "ready": True}
        if method == "POST" and route == "/v2/models/{model}/infer":
            return self.infer(body)
        return 404, {"error": f"no route for {method} {path}"}

    def model_metadata(self) -> dict[str, Any]:
        return {
            "name": MODEL_NAME,
            "versions": ["1"],
            "platform": "onnxruntime_onnx",
            "inputs": [{"name": INPUT, "datatype": "FP32", "shape": [-1, IN_FEATURES]}],
            "outputs": [{"name": OUTPUT, "datatype": "FP32", "shape": [-1, OUT_FEATURES]}],
        }

    def infer(self, body: bytes) -> Reply:
        try:
            x, request_id = parse_infer(body)
        except ValueError as err:
            return 400, {"error": str(err)}
        return self._engine_slot(lambda: self._run(x, request_id))

    def complete(self, body: bytes) -> Reply:
        try:
            prompt, max_tokens = openai.parse_completion(body)
        except ValueError as err:
            return 400, {"error": str(err)}

        def work() -> Reply:
            failed = self._inject()
            wrong = self.faults.hits("wrong") is not None
            return failed or (200, openai.complete(prompt, max_tokens, wrong))

        return self._engine_slot(work)

    def _engine_slot(self, work: Callable[[], Reply]) -> Reply:
        """Run `work` in one of the engine's slots, with the vLLM-style queue, latency and success metrics."""
        started = time.perf_counter()
        self.metrics.waiting.inc()
        with self.slots:
            self.metrics.waiting.dec()
            self.metrics.running.inc()
            try:
                code, reply = work()
            finally:
                self.metrics.running.dec()
        self.metrics.latency.observe(time.perf_counter() - started)
        if code == 200:
            self.metrics.success.inc()
        return code, reply

    def _inject(self) -> Reply | None:
        """Apply the latency and errors faults; the error reply when this request fails."""
        if fault := self.faults.hits("latency"):
            time.sleep(fault.latency_s)
        if self.faults.hits("errors"):
            self.log.error(faultmod.OOM_LINE)
            return 500, {"error": "CUDA out of memory"}
        return None

    def _run(self, x: np.ndarray, request_id: str | None) -> Reply:
        if failed := self._inject():
            return failed
        y = self.engine.infer(x)
        if self.faults.hits("wrong"):
            y = y + np.float32(WRONG_OFFSET)
        reply: dict[str, Any] = {
            "model_name": MODEL_NAME,
            "model_version": "1",
            "outputs": [
                {"name": OUTPUT, "datatype": "FP32", "shape": list(y.shape), "data": y.ravel().tolist()}
            ],
        }
        if request_id is not None:
            reply["id"] = request_id
        return 200, reply

    def admin(self, method: str, headers: Any, body: bytes) -> Reply:
        if self.token is None:
            return 403, {"error": "admin API disabled: start the worker with --admin-token-file"}
        supplied = str(headers.get("Authorization") or "")
        if not hmac.compare_digest(supplied.encode(), f"Bearer {self.token}".encode()):
            return 401, {"error": "missing or wrong bearer token"}
        if method == "GET":
            return 200, self.faults.describe()
        if method != "POST":
            return 405, {"error": "use GET or POST"}
        try:
            fault = faultmod.parse_request(json.loads(body or b"null"))
        except (ValueError, faultmod.FaultError) as err:
            return 400, {"error": str(err)}
        self.log.warning("fault set by admin API: %s", fault)
        if fault.kind == "crash":
            self.crash.set()
        else:
            self.faults.set(fault)
        return 200, {"fault": fault.kind}


_MODEL = f"/v2/models/{MODEL_NAME}"
# Request path → route template (the `handler` label), built once rather than per request.
ROUTES = {
    "/v2/health/live": "/v2/health/live",
    "/v2/health/ready": "/v2/health/ready",
    "/v2": "/v2",
    _MODEL: "/v2/models/{model}",
    f"{_MODEL}/ready": "/v2/models/{model}/ready",
    f"{_MODEL}/infer": "/v2/models/{model}/infer",
    "/metrics": "/metrics",
    "/admin/fault": "/admin/fault",
    "/v1/models": "/v1/models",
    "/v1/completions": "/v1/completions",
}


def route(path: str) -> str:
    """The route template for `path` (the `handler` label), or "none" as the instrumentator says."""
    if path.startswith("/v2/models/") and path not in ROUTES:
        return "/v2/models/{model}" + ("/infer" if path.endswith("/infer") else "")
    return ROUTES.get(path, "none")


def parse_infer(body: bytes) -> tuple[np.ndarray, str | None]:
    """A KServe v2 JSON infer request → the input array; ValueError says what is wrong."""
    try:
        request = json.loads(body)
    except ValueError:
        raise ValueError("request body is not JSON") from None
    inputs = request.get("inputs") if isinstance(request, dict) else None
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise ValueError(f"'inputs' must hold exactly one tensor named '{INPUT}'")
    tensor = inputs[0]
    if tensor.get("name") != INPUT or tensor.get("datatype") != "FP32":
        raise ValueError(f"input tensor must be named '{INPUT}' with datatype FP32")
    shape = tensor.get("shape")
    if not (isinstance(shape, list) and len(shape) == 2 and shape[1] == IN_FEATURES and shape[0] >= 1):
        raise ValueError(f"input shape must be [batch, {IN_FEATURES}]")
    try:
        x = np.asarray(tensor.get("data"), dtype=np.float32).reshape(shape)
    except (TypeError, ValueError):
        raise ValueError(f"input data does not fill shape {shape}") from None
    request_id = request.get("id")
    return x, None if request_id is None else str(request_id)


class Handler(BaseHTTPRequestHandler):
    app: WorkerApp  # set on the subclass that serve() builds
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without TCP_NODELAY, Nagle's algorithm holds the body
        # until the client's delayed ACK (~40 ms on Linux) on every keep-alive request. uvicorn, which
        # serves vLLM, sets it too.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        length = int(self.headers.get("Content-Length") or 0)
        reply: dict[str, Any] | bytes
        template = route(path)
        if length > MAX_BODY:
            code, reply = 413, {"error": f"body larger than {MAX_BODY} bytes"}
            self.close_connection = True
        else:
            body = self.rfile.read(length) if length else b""
            code, reply = self.app.handle(method, path, template, self.headers, body)
        if template not in UNCOUNTED:
            self.app.metrics.count_http(template, method, code)
        data = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
        ctype = "text/plain; version=0.0.4; charset=utf-8" if isinstance(reply, bytes) else "application/json"
        try:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a probe's timeout on a hang)
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # access logs would drown the OOM lines
        pass
