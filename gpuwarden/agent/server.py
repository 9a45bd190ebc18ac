"""The agent's endpoints: /metrics (pre-rendered bytes), /health (JSON), /healthz (the agent's own liveness).

The request path does no collection and no rendering: it picks the cached plain or gzip bytes, on the HTTP
layer's I/O thread (`inline`), so a scrape never waits for a handler thread. Others add their routes
(the remediation API's /v1/...) through `Agent.add_route`, which feeds the same `Router`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from gpuwarden.address import parse_listen
from gpuwarden.agent.health_store import HealthStore
from gpuwarden.agent.http import (
    Limits,
    Request,
    Response,
    Route,
    Router,
    Stats,
    error_response,
)
from gpuwarden.agent.http_loop import Server
from gpuwarden.agent.runner import Runner
from gpuwarden.config import TLSSettings
from gpuwarden.health import State

if TYPE_CHECKING:
    import ssl

# The classic text format: every name we export is a legacy-valid name, and every Prometheus 2.x parses it.
CONTENT_TYPE_LATEST = "text/plain; version=0.0.4; charset=utf-8"

INDEX = b"""<html><head><title>gpuwarden</title></head><body><h1>gpuwarden</h1>
<p><a href="/metrics">/metrics</a> <a href="/health">/health</a> <a href="/healthz">/healthz</a></p>
</body></html>
"""

# `/health?fail_status=503`: a load balancer that only reads status codes gets this code while the node is
# UNHEALTHY (and 200 otherwise); without the parameter /health is always 200.
FAIL_STATUS = "fail_status"


def agent_routes(runner: Runner, health: HealthStore, alive: Callable[[], bool]) -> list[Route]:
    def metrics(request: Request) -> Response:
        exposition = runner.exposition  # one reference read: the old or the new rendering, never half
        if "gzip" in request.headers.get("accept-encoding", ""):
            return Response(200, exposition.gzipped, CONTENT_TYPE_LATEST, {"Content-Encoding": "gzip"})
        return Response(200, exposition.plain, CONTENT_TYPE_LATEST)

    def health_json(request: Request) -> Response:
        status = 200
        if FAIL_STATUS in request.query:
            text = request.query[FAIL_STATUS]
            if not (text.isascii() and text.isdigit() and 400 <= int(text) <= 599):
                return error_response(400, f"{FAIL_STATUS} must be an HTTP status from 400 to 599")
            status = int(text)
        body = health.to_json()
        pretty = json.dumps(body, indent=2).encode() + b"\n"  # read by people with curl, too
        return Response(status if body["status"] == State.UNHEALTHY else 200, pretty, "application/json")

    def healthz(request: Request) -> Response:
        if alive():
            return Response(200, b"ok\n")
        return Response(503, b"scheduler not running\n")

    def index(request: Request) -> Response:
        return Response(200, INDEX, "text/html; charset=utf-8")

    return [
        Route("GET", "/metrics", metrics, inline=True),
        Route("GET", "/health", health_json, inline=True),
        Route("GET", "/healthz", healthz, inline=True),
        Route("GET", "/", index, inline=True),
    ]


def ssl_context(tls: TLSSettings) -> ssl.SSLContext:
    import ssl  # here: only an agent with TLS loads it (bench/footprint.py)

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile=str(tls.cert_file), keyfile=str(tls.key_file))
    if tls.client_ca_file:
        ctx.load_verify_locations(cafile=tls.client_ca_file)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class HTTPServer:
    """The agent's listener: binds at construction (a taken port is an OSError here), serves after start."""

    def __init__(
        self,
        listen: str,
        tls: TLSSettings,
        router: Router,
        limits: Limits | None = None,
        stats: Stats | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        host, port = parse_listen(listen)
        context = ssl_context(tls) if tls.enabled else None
        log = log or logging.getLogger("gpuwarden.http")
        try:
            self._server = Server(host, port, router, limits or Limits(), log, tls=context, stats=stats)
        except OSError as err:  # taken, or not an address of this host: say which one
            raise OSError(err.errno, f"cannot listen on {listen}: {err.strerror}") from None
        self.scheme = "https" if tls.enabled else "http"

    @property
    def address(self) -> str:
        host, port = self._server.address
        return f"{self.scheme}://{f'[{host}]' if ':' in host else host}:{port}"

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()
