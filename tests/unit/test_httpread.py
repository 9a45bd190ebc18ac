"""Bounded HTTP reads against a real local server that misbehaves: every limit fails with its reason."""

from __future__ import annotations

import contextlib
import resource
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gpuwarden.httpread import Limits, ReadError, request
from tests.hostile_target import GOOD, HostileTarget
from tests.local_servers import self_signed

LIMITS = Limits(deadline=2.0, max_body_bytes=4 << 20, deadline_key="scrape_timeout")


@pytest.fixture(scope="module")
def target() -> Iterator[HostileTarget]:
    t = HostileTarget()
    yield t
    t.close()


def failure(url: str, limits: Limits = LIMITS) -> ReadError:
    with pytest.raises(ReadError) as info:
        request("GET", url, limits)
    return info.value


def test_a_good_page_is_read_whole(target: HostileTarget) -> None:
    reply = request("GET", target.url("good"), LIMITS)
    assert (reply.status, reply.body) == (200, GOOD)


@pytest.mark.parametrize("path", ["endless", "gzip-bomb", "big"])
def test_a_body_past_the_cap_fails_at_the_cap_and_names_the_setting(target: HostileTarget, path: str) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    err = failure(target.url(path))
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert err.kind == "too_large"
    assert f"larger than {4 << 20} bytes (max_body_bytes)" in str(err)
    # The cap is 4 MB; the peak may hold the page once more while it is joined, never the whole stream.
    assert grown_mb < 20, f"peak RSS grew by {grown_mb:.0f} MB"


@pytest.mark.parametrize("path", ["trickle", "slow-headers"])
def test_a_trickle_fails_at_the_total_deadline_not_per_read(target: HostileTarget, path: str) -> None:
    start = time.monotonic()
    err = failure(
        target.url(path), Limits(deadline=1.0, max_body_bytes=1 << 20, deadline_key="scrape_timeout")
    )
    elapsed = time.monotonic() - start
    assert err.kind == "timeout" and "within 1s (scrape_timeout)" in str(err)
    assert elapsed < 5  # a bound, not a timing: per-read timeouts alone never end


def test_a_redirect_to_another_host_is_not_followed_unless_allowed(target: HostileTarget) -> None:
    err = failure(target.url("redirect-other"))
    assert err.kind == "redirect" and f"another host (http://localhost:{target.port}/good)" in str(err)
    allowed = Limits(deadline=2.0, max_body_bytes=1 << 20, other_hosts=True)
    assert request("GET", target.url("redirect-other"), allowed).body == GOOD


def test_a_redirect_on_the_same_host_is_followed(target: HostileTarget) -> None:
    reply = request("GET", target.url("redirect-same"), LIMITS)
    assert reply.body == GOOD and reply.url == target.url("good")


@pytest.mark.parametrize(
    ("path", "reason"), [("not-gzip", "not a valid HTTP answer"), ("cut-gzip", "ends before")]
)
def test_a_broken_compressed_body_is_a_bad_response(target: HostileTarget, path: str, reason: str) -> None:
    err = failure(target.url(path))
    assert err.kind == "bad_response" and reason in str(err)


def test_a_compressed_body_of_two_gzip_members_is_read_whole(target: HostileTarget) -> None:
    assert request("GET", target.url("two-members"), LIMITS).body == GOOD + GOOD


def test_a_closed_port_is_unreachable() -> None:
    err = failure("http://127.0.0.1:9/metrics")
    assert err.kind == "unreachable" and "Connection refused" in str(err)


class _TLSPage:
    """A real TLS server answering one small page, and a proxy in front of it that passes the server's
    bytes on one at a time (a handshake that trickles: each read gets a byte well within any timeout)."""

    def __init__(self, tmp_path: Path) -> None:
        self.cert, key = self_signed(tmp_path, "page")
        self._connect = socket.create_connection  # the proxy's own: a test may slow the client's
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.cert), str(key))
        self.server = socket.create_server(("127.0.0.1", 0))
        self.proxy = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._serve, args=(context,), daemon=True).start()
        threading.Thread(target=self._trickle, daemon=True).start()

    def url(self, via_proxy: bool) -> str:
        return f"https://127.0.0.1:{(self.proxy if via_proxy else self.server).getsockname()[1]}/"

    def _serve(self, context: ssl.SSLContext) -> None:
        while True:
            conn, _ = self.server.accept()
            with contextlib.suppress(OSError), context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(65536)
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    def _trickle(self) -> None:
        while True:
            client, _ = self.proxy.accept()
            upstream = self._connect(self.server.getsockname())
            threading.Thread(target=self._pipe, args=(client, upstream, 0.0), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, 0.05), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket, pause: float) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(1 if pause else 65536):
                dst.sendall(data)
                time.sleep(pause)


def test_a_tls_handshake_that_trickles_fails_at_the_total_deadline(tmp_path: Path) -> None:
    page = _TLSPage(tmp_path)
    limits = Limits(
        deadline=1.0, max_body_bytes=1 << 20, deadline_key="scrape_timeout", ca_file=str(page.cert)
    )
    assert request("GET", page.url(via_proxy=False), limits).body == b"ok"  # the control: the server is sound
    start = time.monotonic()
    err = failure(page.url(via_proxy=True), limits)
    assert err.kind == "timeout", err
    # A bound, not a timing: the server's ~1 KB handshake at 20 bytes/s would take close to a minute.
    assert time.monotonic() - start < 5


def test_a_slow_connect_and_a_trickling_handshake_together_stay_within_the_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The handshake gets the time left after the TCP connect, not a fresh timeout: before, a connect that
    took 1.5 s of a 2 s deadline was followed by up to 2 s more of handshake (3.5 s in all)."""
    page = _TLSPage(tmp_path)
    connect = socket.create_connection

    def slow_connect(*args: Any, **kwargs: Any) -> socket.socket:
        time.sleep(1.5)  # SYNs retransmitted to a node whose network is struggling
        return connect(*args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", slow_connect)
    limits = Limits(deadline=2.0, max_body_bytes=1 << 20, ca_file=str(page.cert))
    start = time.monotonic()
    err = failure(page.url(via_proxy=True), limits)
    took = time.monotonic() - start
    assert err.kind == "timeout", err
    assert took < 2.75, f"{took:.2f}s for a 2 s deadline"  # 3.5 s before; margin for a loaded machine
