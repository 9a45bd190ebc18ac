"""The real agent's HTTP server against clients that stall, idle, trickle and flood it.

Each case failed on the server before the HTTP layer (ThreadingHTTPServer, TLS wrapped around the listening
socket): a silent TLS client blocked every scrape, idle connections took one thread each.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration.agent_process import AgentProcess, free_port, get, only_collectors
from tests.integration.test_agent_e2e import _make_pki

pytestmark = pytest.mark.integration


def config(port: int, **agent: Any) -> dict[str, Any]:
    return {
        "agent": {"listen": f"127.0.0.1:{port}", **agent},
        "collectors": only_collectors({"node": {"interval": 0.5, "disk_paths": ["/"]}}),
    }


@contextmanager
def running(tmp: Path, cfg: dict[str, Any]) -> Iterator[AgentProcess]:
    proc = AgentProcess(tmp, cfg, watchdog_usec=None)
    try:
        proc.wait_message("READY=1")
        yield proc
    finally:
        proc.stop()


def connections(port: int, count: int, stack: ExitStack, first: bytes = b"") -> list[socket.socket]:
    """`count` open TCP connections that send `first` and then nothing."""
    out = []
    for _ in range(count):
        s = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=10))
        if first:
            s.sendall(first)
        out.append(s)
    return out


def slowest(url: str, times: int, **kwargs: Any) -> float:
    """The slowest of `times` fresh-connection GETs of `url` (each must answer 200 within 5 s)."""
    worst = 0.0
    for _ in range(times):
        start = time.monotonic()
        assert requests.get(url, timeout=5, **kwargs).status_code == 200
        worst = max(worst, time.monotonic() - start)
    return worst


def metric(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{series} not in the exposition")


def test_a_tls_client_that_never_sends_a_byte_does_not_delay_scrapes(tmp_path: Path) -> None:
    _make_pki(tmp_path)
    port = free_port()
    tls = {"cert_file": str(tmp_path / "server.crt"), "key_file": str(tmp_path / "server.key")}
    with running(tmp_path, config(port, tls=tls)), ExitStack() as stack:
        ca = str(tmp_path / "ca.crt")
        connections(port, 1, stack)  # connected, no ClientHello
        for path in ("/metrics", "/healthz"):
            assert slowest(f"https://127.0.0.1:{port}{path}", 5, verify=ca) < 1.0
        connections(port, 200, stack)  # and 200 more of them
        assert slowest(f"https://127.0.0.1:{port}/metrics", 5, verify=ca) < 1.0
        # Half a ClientHello is no better than none.
        connections(port, 20, stack, first=b"\x16\x03\x01\x02\x00\x01")
        assert slowest(f"https://127.0.0.1:{port}/healthz", 5, verify=ca) < 1.0


def test_a_silent_tls_client_is_cut_at_the_handshake_timeout_and_counted(tmp_path: Path) -> None:
    _make_pki(tmp_path)
    port = free_port()
    tls = {"cert_file": str(tmp_path / "server.crt"), "key_file": str(tmp_path / "server.key")}
    cfg = config(port, tls=tls, http={"handshake_timeout": 0.5})
    with running(tmp_path, cfg), ExitStack() as stack:
        (silent,) = connections(port, 1, stack)
        assert silent.recv(1) == b""  # closed by the agent, well before the 10 s socket timeout
        time.sleep(0.6)  # the exposition is rendered after each collection (every 0.5 s here)
        text = get(f"https://127.0.0.1:{port}/metrics", verify=str(tmp_path / "ca.crt")).text
        assert metric(text, 'gpuwarden_http_client_errors_total{reason="handshake_timeout"}') >= 1


def test_a_thousand_idle_connections_leave_scrapes_and_collectors_alone(tmp_path: Path) -> None:
    port = free_port()
    with running(tmp_path, config(port)) as proc, ExitStack() as stack:
        base = f"http://127.0.0.1:{port}"
        threads_before = _threads(proc.proc.pid)
        idle = connections(port, 1000, stack)
        assert slowest(f"{base}/metrics", 5) < 1.0
        assert _threads(proc.proc.pid) <= threads_before + 2  # a connection costs no thread
        for s in idle:
            s.close()
        time.sleep(1.2)  # collectors run on after the flood
        text = get(f"{base}/metrics").text
        assert 'gpuwarden_collector_success{collector="node"} 1.0' in text
        last = metric(text, 'gpuwarden_collector_last_success_timestamp_seconds{collector="node"}')
        assert time.time() - last < 2


def test_past_the_connection_limit_the_longest_idle_connection_makes_room(tmp_path: Path) -> None:
    port = free_port()
    with running(tmp_path, config(port, http={"max_connections": 64})), ExitStack() as stack:
        idle = connections(port, 200, stack)
        assert slowest(f"http://127.0.0.1:{port}/metrics", 5) < 1.0
        assert idle[0].recv(1) == b""  # the oldest idle ones were closed to make room
        text = get(f"http://127.0.0.1:{port}/metrics").text
        assert metric(text, "gpuwarden_http_connections_max") == 64
        time.sleep(0.6)
        text = get(f"http://127.0.0.1:{port}/metrics").text
        assert metric(text, 'gpuwarden_http_client_errors_total{reason="connection_limit"}') >= 136


def test_a_trickling_client_is_cut_at_the_request_timeout(tmp_path: Path) -> None:
    port = free_port()
    with running(tmp_path, config(port, http={"request_timeout": 1.0})), ExitStack() as stack:
        (slow,) = connections(port, 1, stack, first=b"GET /metrics HTTP/1.1\r\n")
        start = time.monotonic()
        try:
            for _ in range(40):  # one header byte every 0.1 s, never finishing
                slow.sendall(b"X")
                time.sleep(0.1)
        except OSError:
            pass  # reset by the agent
        assert time.monotonic() - start < 3.5
        time.sleep(0.6)
        text = get(f"http://127.0.0.1:{port}/metrics").text
        assert metric(text, 'gpuwarden_http_client_errors_total{reason="request_timeout"}') >= 1


def _threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads: line")
