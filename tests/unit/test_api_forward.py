"""Forwarding a webhook delivery to the owning agent: a real owner takes it; a peer that answers forever,
trickles, hangs, redirects or refuses costs a clear FleetUnreachable within the deadline and the cap,
never the forwarding agent's memory or thread."""

from __future__ import annotations

import socket
import time
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from gpuwarden.agent.forward import FORWARD_MAX_BODY, HOPS_HEADER, FleetUnreachable, forward
from gpuwarden.agent.http import Router
from gpuwarden.agent.server import HTTPServer
from gpuwarden.config import TLSSettings
from gpuwarden.remediations.engine import Engine
from tests.local_servers import self_signed, serve_handler
from tests.unit.api_support import WRITE, api, engine, serving, wait_outcome, webhook


class Peer(BaseHTTPRequestHandler):
    """An agent gone wrong, one behaviour per path."""

    protocol_version = "HTTP/1.1"
    seen: list[dict[str, str]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers["Content-Length"]))
        Peer.seen.append(dict(self.headers))
        route = self.path.removesuffix("/v1/alerts")
        if route == "/endless":  # 200, then a body without end
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b" " * 65536)
            except OSError:
                return  # the client gave up at its cap
        if route == "/trickle":  # a byte at a time: every read succeeds, the answer never completes
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            try:
                for _ in range(10_000):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                return  # the client gave up at its deadline
        if route == "/moved":
            self.send_response(307)
            self.send_header("Location", "/elsewhere/v1/alerts")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b'{"error": "engine restarting"}'
        self.send_response(503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def peer() -> Iterator[str]:
    Peer.seen = []
    with serve_handler(Peer) as url:
        yield url


@pytest.fixture
def silent() -> Iterator[str]:
    """A peer that accepts the connection and never says a word (a stopped process, a full backlog)."""
    sock = socket.create_server(("127.0.0.1", 0))
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def wait_for_trigger(eng: Engine, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = [r["run"] for r in eng.audit_records() if r["step"] == "trigger"]
        if runs:
            (run,) = runs
            return run
        time.sleep(0.05)
    raise AssertionError(f"no run started within {timeout}s")


def test_the_owner_takes_the_delivery_with_the_token_and_the_hop_count(tmp_path: Path) -> None:
    eng = engine(tmp_path).start()
    with serving(api(tmp_path, eng)) as url:
        answer = forward(url, webhook(instance="gpu-1:9837"), WRITE, hops=1, timeout=5.0)
        assert answer == f"{url} answered 202"
        run = wait_for_trigger(eng)  # the one run the delivery queued (the engine records it on its thread)
        assert wait_outcome(eng, run)["result"] == "dry_run"
        with pytest.raises(FleetUnreachable) as refused:  # a token the owner does not know: no retry
            forward(url, webhook(), "f" * 32, hops=1, timeout=5.0)
    eng.stop()
    assert "answered 401: missing or wrong bearer token" in str(refused.value)
    assert refused.value.retry is False


@pytest.mark.timeout(60)  # an unbounded read would hang here: fail in a minute, not the suite's five
def test_an_endless_answer_fails_at_the_cap_without_growing_the_agent(peer: str) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(FleetUnreachable) as failed:
            forward(f"{peer}/endless", webhook(), WRITE, hops=1, timeout=10.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert f"too_large: body larger than {FORWARD_MAX_BODY} bytes" in str(failed.value)
    assert failed.value.retry is True  # Alertmanager sends the group again
    assert peak < 4 * FORWARD_MAX_BODY  # the cap plus one read buffer, not the peer's stream


@pytest.mark.timeout(60)
@pytest.mark.parametrize("where", ["trickle", "silent"])
def test_a_peer_that_trickles_or_never_answers_fails_at_the_one_deadline(
    peer: str, silent: str, where: str
) -> None:
    url = f"{peer}/trickle" if where == "trickle" else silent
    with pytest.raises(FleetUnreachable) as failed:
        forward(url, webhook(), WRITE, hops=1, timeout=1.0)
    assert str(failed.value) == (f"{url}: timeout: no complete answer within 1s (api.forward_timeout_s)")
    assert failed.value.retry is True


def test_a_redirect_is_not_followed_and_a_5xx_is_worth_a_retry(peer: str) -> None:
    with pytest.raises(FleetUnreachable) as moved:
        forward(f"{peer}/moved", webhook(), WRITE, hops=2, timeout=5.0)
    assert str(moved.value).startswith(f"{peer}/moved answered 307") and moved.value.retry is False
    assert len(Peer.seen) == 1 and Peer.seen[0][HOPS_HEADER] == "2"
    with pytest.raises(FleetUnreachable) as busy:
        forward(f"{peer}/busy", webhook(), WRITE, hops=1, timeout=5.0)
    assert str(busy.value) == f"{peer}/busy answered 503: engine restarting" and busy.value.retry is True


def test_an_unreachable_peer_or_a_missing_ca_file_is_a_clear_failure(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    with pytest.raises(FleetUnreachable, match="unreachable: .*refused"):
        forward(f"http://127.0.0.1:{port}", webhook(), WRITE, hops=1, timeout=2.0)
    missing = tmp_path / "no-ca.pem"
    with pytest.raises(FleetUnreachable, match="unreachable: No such file"):
        forward(f"https://127.0.0.1:{port}", webhook(), WRITE, hops=1, timeout=2.0, ca_file=str(missing))


def test_an_owner_served_over_https_is_verified_against_forward_ca_file(tmp_path: Path) -> None:
    # A self-signed certificate for 127.0.0.1: trusted only through the CA file, as api.forward_ca_file.
    cert, key = self_signed(tmp_path)
    eng = engine(tmp_path).start()
    owner = api(tmp_path, eng)
    server = HTTPServer(
        "127.0.0.1:0", TLSSettings(cert_file=str(cert), key_file=str(key)), Router(owner.routes())
    )
    server.start()
    try:
        url = server.address
        assert url.startswith("https://")
        with pytest.raises(FleetUnreachable, match="unreachable: .*CERTIFICATE_VERIFY_FAILED"):
            forward(url, webhook(), WRITE, hops=1, timeout=5.0)  # the system's CAs do not know it
        answer = forward(url, webhook(), WRITE, hops=1, timeout=5.0, ca_file=str(cert))
        wait_outcome(eng, wait_for_trigger(eng))
    finally:
        server.stop()
        eng.stop()
    assert answer == f"{url} answered 202"
