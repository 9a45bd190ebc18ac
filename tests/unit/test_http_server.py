"""The HTTP server in-process, over real loopback sockets: keep-alive, pipelining, limits, threads."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from gpuwarden.agent.http import Limits, Request, Response, Route, Router, error_response
from gpuwarden.agent.http_loop import Server

BIG = b"x" * (32 << 20)  # larger than any socket buffer: a client that does not read blocks the write


class App:
    def __init__(self) -> None:
        self.release = threading.Event()
        self.seen: list[tuple[str, str, int]] = []

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/fast", lambda r: Response(200, b"fast"), inline=True),
            Route("POST", "/echo", lambda r: Response(200, r.body), content_type="application/json"),
            Route("GET", "/slow", self.slow),
            Route("GET", "/boom", self.boom),
            Route("GET", "/big", lambda r: Response(200, BIG), inline=True),
            Route("GET", "/items/{item}", lambda r: error_response(404, f"no {r.params['item']}")),
        ]

    def slow(self, request: Request) -> Response:
        self.release.wait(10)
        return Response(200, b"slow")

    def boom(self, request: Request) -> Response:
        raise RuntimeError("a handler bug")

    def observe(self, method: str, route: str, status: int) -> None:
        self.seen.append((method, route, status))


@pytest.fixture
def served() -> Iterator[tuple[Server, App]]:
    app = App()
    limits = Limits(handler_threads=2, write_timeout=0.5, request_timeout=1.0, max_body_bytes=1000)
    server = Server(
        "127.0.0.1", 0, Router(app.routes()), limits, logging.getLogger("test.http"), observe=app.observe
    )
    server.start()
    yield server, app
    app.release.set()
    server.stop()


def connect(server: Server) -> socket.socket:
    return socket.create_connection(server.address, timeout=5)


_pending: dict[int, bytes] = {}  # bytes read past one response, per socket (pipelined answers)


def read_response(s: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = _pending.pop(s.fileno(), b"")
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, f"closed before a response: {data!r}"
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers["content-length"])
    while len(rest) < length:
        chunk = s.recv(65536)
        assert chunk
        rest += chunk
    _pending[s.fileno()] = rest[length:]
    return int(lines[0].split()[1]), headers, rest[:length]


def test_keep_alive_and_pipelined_requests_are_answered_in_order(served: tuple[Server, App]) -> None:
    server, _ = served
    with connect(server) as s:
        s.sendall(b"GET /fast HTTP/1.1\r\n\r\n")
        assert read_response(s)[2] == b"fast"
        body = b'{"a": 1}'
        s.sendall(
            b"POST /echo HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n"
            + body
            + b"GET /items/x HTTP/1.1\r\n\r\nGET /fast HTTP/1.1\r\nConnection: close\r\n\r\n"
        )
        assert read_response(s)[2] == body
        status, headers, reply = read_response(s)
        assert (
            status == 404
            and reply == b'{"error": "no x"}\n'
            and headers["content-type"] == "application/json"
        )
        status, headers, reply = read_response(s)
        assert reply == b"fast" and headers["connection"] == "close"
        assert s.recv(1) == b""


def test_thousands_of_pipelined_requests_in_one_write_are_all_answered(served: tuple[Server, App]) -> None:
    server, _ = served
    with connect(server) as s:
        s.sendall(b"GET /fast HTTP/1.1\r\n\r\n" * 5000)  # 125 KB: far deeper than Python's recursion
        assert all(read_response(s)[2] == b"fast" for _ in range(5000))
        s.sendall(b"GET /fast HTTP/1.1\r\n\r\n")
        assert read_response(s)[2] == b"fast"


def test_head_gets_the_length_without_the_body(served: tuple[Server, App]) -> None:
    server, _ = served
    with connect(server) as s:
        s.sendall(b"HEAD /fast HTTP/1.1\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and b"Content-Length: 4\r\n" in data
    assert data.endswith(b"\r\n\r\n")


def test_expect_100_continue_is_answered_before_the_body_is_sent(served: tuple[Server, App]) -> None:
    server, _ = served
    with connect(server) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        assert s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b"{}")
        assert read_response(s)[0] == 200


def test_a_handler_bug_is_a_json_500_and_one_log_line(
    served: tuple[Server, App], caplog: pytest.LogCaptureFixture
) -> None:
    server, app = served
    with connect(server) as s:
        s.sendall(b"GET /boom HTTP/1.1\r\n\r\n")
        status, _, body = read_response(s)
    assert (status, body) == (500, b'{"error": "internal error"}\n')
    assert [r.getMessage() for r in caplog.records] == ["handler for GET /boom failed"]
    assert ("GET", "/boom", 500) in app.seen


def test_slow_handlers_never_delay_inline_routes_nor_add_threads(served: tuple[Server, App]) -> None:
    server, app = served
    before = threading.active_count()
    slow = [connect(server) for _ in range(20)]
    for s in slow:
        s.sendall(b"GET /slow HTTP/1.1\r\n\r\n")
    with connect(server) as s:
        s.sendall(b"GET /fast HTTP/1.1\r\n\r\n")
        assert read_response(s)[2] == b"fast"  # while both handler threads are held and 18 wait
    # The pool of 2, started by the first slow request; nothing per waiting request. (At most: a thread of
    # the previous test's server may still be on its way out when `before` is taken.)
    assert sum(w.is_alive() for w in server._workers) == 2
    assert threading.active_count() <= before + 2
    app.release.set()
    for s in slow:
        assert read_response(s)[2] == b"slow"
        s.close()


def test_a_body_over_the_limit_gets_413_and_the_client_can_read_it(served: tuple[Server, App]) -> None:
    server, app = served
    with connect(server) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nContent-Length: 5000000\r\n\r\n" + b"x" * 200_000)
        status, headers, body = read_response(s)
    assert status == 413 and headers["connection"] == "close"
    assert body == b'{"error": "body larger than 1000 bytes"}\n'
    assert server.stats.client_errors["body_too_large"] == 1
    assert ("POST", "none", 413) in app.seen


def test_a_client_that_does_not_read_its_response_is_cut_at_the_write_timeout(
    served: tuple[Server, App],
) -> None:
    server, _ = served
    with connect(server) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b"GET /big HTTP/1.1\r\n\r\n")
        deadline = time.monotonic() + 5
        while server.stats.client_errors["write_timeout"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert server.stats.client_errors["write_timeout"] == 1
    with connect(server) as s:
        s.sendall(b"GET /fast HTTP/1.1\r\n\r\n")
        assert read_response(s)[2] == b"fast"


def test_stop_closes_every_connection_even_with_a_handler_stuck(served: tuple[Server, App]) -> None:
    server, _ = served
    stuck = connect(server)
    stuck.sendall(b"GET /slow HTTP/1.1\r\n\r\n")
    idle = connect(server)
    address = server.address
    time.sleep(0.1)
    start = time.monotonic()
    server.stop()
    assert time.monotonic() - start < 1.0
    assert idle.recv(1) == b"" and stuck.recv(1) == b""
    with pytest.raises(OSError):
        socket.create_connection(address, timeout=1)


def test_handler_threads_start_with_the_first_request_that_needs_one(served: tuple[Server, App]) -> None:
    """The agent's default routes are all inline: without the /v1 API it runs no handler thread."""
    server, _ = served
    with connect(server) as s:
        for _ in range(3):
            s.sendall(b"GET /fast HTTP/1.1\r\n\r\n")
            assert read_response(s)[2] == b"fast"
        assert not any(w.is_alive() for w in server._workers)
        s.sendall(b"POST /echo HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}")
        assert read_response(s)[2] == b"{}"
        assert sum(w.is_alive() for w in server._workers) == 2
