"""HTTP endpoints: /metrics (pre-rendered bytes), /health (JSON), /healthz (the agent's own liveness).

The request path does no collection and no rendering: it picks the cached plain or gzip bytes. TLS and
mutual TLS use the standard library's ssl module, as prometheus-client's own server does.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from gpuwarden.address import parse_listen
from gpuwarden.agent.health_store import HealthStore
from gpuwarden.agent.runner import Runner
from gpuwarden.config import TLSSettings

# The classic text format: every name we export is a legacy-valid name, and every Prometheus 2.x parses it.
CONTENT_TYPE_LATEST = "text/plain; version=0.0.4; charset=utf-8"

INDEX = b"""<html><head><title>gpuwarden</title></head><body><h1>gpuwarden</h1>
<p><a href="/metrics">/metrics</a> <a href="/health">/health</a> <a href="/healthz">/healthz</a></p>
</body></html>
"""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    runner: Runner
    health: HealthStore
    alive: Callable[[], bool]


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive: Prometheus reuses its connection

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without NODELAY, Nagle's algorithm holds the body back
        # until the client's delayed ACK (~40 ms on Linux) on every keep-alive scrape.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            exposition = self.server.runner.exposition
            if "gzip" in self.headers.get("Accept-Encoding", ""):
                self._send(200, CONTENT_TYPE_LATEST, exposition.gzipped, gzip=True)
            else:
                self._send(200, CONTENT_TYPE_LATEST, exposition.plain)
        elif path == "/health":
            body = json.dumps(self.server.health.to_json(), indent=2).encode() + b"\n"
            self._send(200, "application/json", body)
        elif path == "/healthz":
            if self.server.alive():
                self._send(200, "text/plain; charset=utf-8", b"ok\n")
            else:
                self._send(503, "text/plain; charset=utf-8", b"scheduler not running\n")
        elif path == "/":
            self._send(200, "text/html; charset=utf-8", INDEX)
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found\n")

    def _send(self, code: int, content_type: str, body: bytes, gzip: bool = False) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if gzip:
            self.send_header("Content-Encoding", "gzip")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        logging.getLogger("gpuwarden.http").debug(format, *args)


def ssl_context(tls: TLSSettings) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile=str(tls.cert_file), keyfile=str(tls.key_file))
    if tls.client_ca_file:
        ctx.load_verify_locations(cafile=tls.client_ca_file)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class HTTPServer:
    def __init__(
        self, listen: str, tls: TLSSettings, runner: Runner, health: HealthStore, alive: Callable[[], bool]
    ) -> None:
        host, port = parse_listen(listen)
        server_class = _Server6 if ":" in host else _Server
        try:
            self._server = server_class((host, port), _Handler)
        except OSError as err:  # taken, or not an address of this host: say which one
            raise OSError(err.errno, f"cannot listen on {listen}: {err.strerror}") from None
        self._server.runner, self._server.health, self._server.alive = runner, health, alive
        if tls.enabled:
            self._server.socket = ssl_context(tls).wrap_socket(self._server.socket, server_side=True)
        self.scheme = "https" if tls.enabled else "http"
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        name = f"[{name}]" if ":" in name else name
        return f"{self.scheme}://{name}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
