"""The worker's HTTP API: KServe v2 (health, metadata, infer), /metrics, and the authenticated admin API.

Routes (KServe v2 "Predict Protocol", as Triton implements it), served by the agent's HTTP layer:
  GET  /v2/health/live, /v2/health/ready, /v2, /v2/models/canary, /v2/models/canary/ready
  POST /v2/models/canary/infer           JSON tensors in, JSON tensors out
  GET  /v1/models, POST /v1/completions  OpenAI-compatible (vLLM, SGLang); see openai.py
  GET  /metrics                          Prometheus text (see metrics.py)
  GET|POST /admin/fault                  `Authorization: Bearer <token>`; see faults.py
Errors follow KServe: a JSON object `{"error": "..."}` with a 4xx/5xx status.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from gpuwarden.agent.http import Bearer, Request, Response, Route, json_response
from gpuwarden.worker import faults as faultmod
from gpuwarden.worker import openai
from gpuwarden.worker.faults import FaultState
from gpuwarden.worker.metrics import WorkerMetrics
from gpuwarden.worker.model import IN_FEATURES, INPUT, MODEL_NAME, OUT_FEATURES, OUTPUT
from gpuwarden.worker.runtime import Engine

MAX_BODY = 1 << 20
MAX_BATCH = 4096  # rows per inference: far above the canary's, far below what would exhaust memory
# vLLM's API server leaves these out of http_requests_total (its Instrumentator's excluded_handlers), so
# request rates count inference traffic, not scrapes and probes.
UNCOUNTED = ("/metrics", "/v2/health/live", "/v2/health/ready", "/admin/fault")
WRONG_OFFSET = 0.05  # far outside the canary tolerance (1e-4), small enough to look plausible
JSON = "application/json"
Reply = tuple[int, dict[str, Any] | bytes]


def reply(code: int, body: dict[str, Any] | bytes) -> Response:
    if isinstance(body, bytes):
        return Response(code, body, "text/plain; version=0.0.4; charset=utf-8")
    return json_response(code, body)


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

    def routes(self) -> list[Route]:
        """The route table. /metrics and the admin API run inline, so they answer while a hang fault holds
        every handler thread (that is how tests clear it)."""
        admin = Bearer([self.token]) if self.token else None
        model = "/v2/models/{model}"
        return [
            Route("GET", "/metrics", lambda r: reply(200, self.metrics.render()), inline=True),
            Route("GET", "/admin/fault", self.admin_get, auth=admin, inline=True),
            Route("POST", "/admin/fault", self.admin_post, auth=admin, content_type=JSON, inline=True),
            Route("GET", "/v1/models", self._engine_route(lambda r: (200, openai.models()))),
            Route("POST", "/v1/completions", self._engine_route(self.complete), content_type=JSON),
            Route("GET", "/v2/health/live", self._engine_route(lambda r: (200, {"live": True}))),
            Route("GET", "/v2/health/ready", self._engine_route(lambda r: (200, {"ready": True}))),
            Route("GET", "/v2", self._engine_route(lambda r: (200, SERVER_METADATA))),
            Route("GET", model, self._model_route(lambda r: (200, self.model_metadata()))),
            Route(
                "GET",
                f"{model}/ready",
                self._model_route(lambda r: (200, {"name": MODEL_NAME, "ready": True})),
            ),
            Route("POST", f"{model}/infer", self._model_route(self.infer), content_type=JSON),
        ]

    def observe(self, method: str, route: str, code: int) -> None:
        """Every response the HTTP layer sends, as vLLM's instrumentator counts them."""
        if route not in UNCOUNTED:
            self.metrics.count_http(route, method, code)

    def _engine_route(self, work: Callable[[Request], Reply]) -> Callable[[Request], Response]:
        """KServe and OpenAI routes block while a hang fault is active (a deadlocked engine)."""

        def handler(request: Request) -> Response:
            self.faults.wait_while_hung()
            return reply(*work(request))

        return handler

    def _model_route(self, work: Callable[[Request], Reply]) -> Callable[[Request], Response]:
        def known(request: Request) -> Reply:
            name = request.params["model"]
            if name != MODEL_NAME:
                return 404, {"error": f"unknown model '{name}'; this worker serves '{MODEL_NAME}'"}
            return work(request)

        return self._engine_route(known)

    def model_metadata(self) -> dict[str, Any]:
        return {
            "name": MODEL_NAME,
            "versions": ["1"],
            "platform": "onnxruntime_onnx",
            "inputs": [{"name": INPUT, "datatype": "FP32", "shape": [-1, IN_FEATURES]}],
            "outputs": [{"name": OUTPUT, "datatype": "FP32", "shape": [-1, OUT_FEATURES]}],
        }

    def infer(self, request: Request) -> Reply:
        try:
            x, request_id = parse_infer(request.body)
        except ValueError as err:
            return 400, {"error": str(err)}
        return self._engine_slot(lambda: self._run(x, request_id))

    def complete(self, request: Request) -> Reply:
        try:
            prompt, max_tokens = openai.parse_completion(request.body)
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

    def admin_get(self, request: Request) -> Response:
        return (
            reply(*self._admin_disabled())
            if self.token is None
            else json_response(200, self.faults.describe())
        )

    def admin_post(self, request: Request) -> Response:
        if self.token is None:
            return reply(*self._admin_disabled())
        try:
            fault = faultmod.parse_request(json.loads(request.body or b"null"))
        except (ValueError, RecursionError, faultmod.FaultError) as err:
            message = str(err) if isinstance(err, faultmod.FaultError) else "body is not JSON"
            return json_response(400, {"error": message})
        self.log.warning("fault set by admin API: %s", fault)
        if fault.kind == "crash":
            self.crash.set()
        else:
            self.faults.set(fault)
        return json_response(200, {"fault": fault.kind})

    @staticmethod
    def _admin_disabled() -> Reply:
        return 403, {"error": "admin API disabled: start the worker with --admin-token-file"}


SERVER_METADATA = {"name": "gpuwarden-worker", "version": "1", "extensions": []}
MODEL_READY = {"name": MODEL_NAME, "ready": True}


def parse_infer(body: bytes) -> tuple[np.ndarray, str | None]:
    """A KServe v2 JSON infer request → the input array; ValueError says what is wrong."""
    try:
        request = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser's stack
        raise ValueError("request body is not JSON") from None
    inputs = request.get("inputs") if isinstance(request, dict) else None
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise ValueError(f"'inputs' must hold exactly one tensor named '{INPUT}'")
    tensor = inputs[0]
    if tensor.get("name") != INPUT or tensor.get("datatype") != "FP32":
        raise ValueError(f"input tensor must be named '{INPUT}' with datatype FP32")
    shape = tensor.get("shape")
    if not (isinstance(shape, list) and len(shape) == 2 and all(type(n) is int for n in shape)):
        raise ValueError(f"input shape must be [batch, {IN_FEATURES}]")
    if shape[1] != IN_FEATURES or not 1 <= shape[0] <= MAX_BATCH:
        raise ValueError(f"input shape must be [batch, {IN_FEATURES}] with batch from 1 to {MAX_BATCH}")
    try:
        x = np.asarray(tensor.get("data"), dtype=np.float32).reshape(shape)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"input data does not fill shape {shape}") from None
    request_id = request.get("id")
    return x, None if request_id is None else str(request_id)
