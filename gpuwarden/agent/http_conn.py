"""One client connection as the HTTP server's I/O thread sees it: a state, a deadline and its buffers.

The framing lives here, without I/O: `take_request` cuts the next complete request out of what has
arrived (refusing, from its head alone, one the layer will not serve), `encode_response` makes the bytes
of an answer.
"""

from __future__ import annotations

import socket

from gpuwarden.agent.http import (
    Head,
    HTTPError,
    Limits,
    Request,
    Response,
    Route,
    Router,
    parse_head,
    reason_phrase,
)

# The states, and the deadline each one runs under (see http.Limits):
HANDSHAKE = "handshake"  # TLS handshake in progress: handshake_timeout from accept
IDLE = "idle"  # waiting for a request's first byte: idle_timeout; may be closed to make room
READING = "reading"  # a request is arriving: request_timeout from its first byte
HANDLING = "handling"  # complete; a handler runs: no deadline here (handlers own theirs)
WRITING = "writing"  # the response is going out: write_timeout
LINGER = "linger"  # refused and half-closed; discarding what the client still sends
CLOSED = "closed"


class Conn:
    __slots__ = (
        *("sock", "peer", "state", "deadline", "events", "buf", "out"),
        *("head", "route", "params", "keep_alive", "refused", "discarded", "wants_continue"),
    )

    def __init__(self, sock: socket.socket, peer: str, state: str, deadline: float) -> None:
        self.sock, self.peer, self.state, self.deadline = sock, peer, state, deadline
        self.events = 0  # what the selector watches for (0: not registered)
        self.buf = bytearray()  # received, not yet parsed
        self.out = memoryview(b"")  # still to send
        self.head: Head | None = None  # the current request's head, once parsed
        self.route: Route | None = None
        self.params: dict[str, str] = {}
        self.keep_alive = False
        self.refused = False  # answered without reading the body: linger before closing
        self.discarded = 0  # bytes thrown away while lingering
        self.wants_continue = False  # the client waits for "100 Continue" before sending the body

    def take_request(self, router: Router, limits: Limits) -> tuple[Route, Request] | None:
        """The next complete request in `buf`, or None while it is incomplete. HTTPError for a request
        the layer refuses, decided from the head before any of the body is read."""
        if self.head is None:
            end, size = self.buf.find(b"\r\n\r\n"), 4
            if end < 0:
                end, size = self.buf.find(b"\n\n"), 2  # bare LF line ends (RFC 9112 lets a server take them)
            if (end < 0 and len(self.buf) > limits.max_header_bytes) or end > limits.max_header_bytes:
                raise HTTPError(431, "request head too large", "header_too_large")
            if end < 0:
                return None
            head = parse_head(bytes(self.buf[:end]))
            route, params = router.resolve(head.method, head.path)
            router.check(route, head.headers, head.length)
            if head.length > limits.max_body_bytes:
                raise HTTPError(413, f"body larger than {limits.max_body_bytes} bytes", "body_too_large")
            del self.buf[: end + size]
            self.head, self.route, self.params = head, route, params
            expect = head.headers.get("expect", "").lower()
            self.wants_continue = head.length > len(self.buf) and "100-continue" in expect
        head, current = self.head, self.route
        assert current is not None
        if len(self.buf) < head.length:
            return None
        body = bytes(self.buf[: head.length])
        del self.buf[: head.length]
        pattern = current.path_pattern
        return current, Request(
            head.method, head.path, head.query, head.headers, body, self.peer, self.params, pattern
        )


def encode_response(response: Response, method: str, head: Head | None, keep_alive: bool) -> bytes:
    """Status line, headers and body (none for HEAD, with the GET's length) in one buffer: one write."""
    lines = [
        f"HTTP/1.1 {response.status} {reason_phrase(response.status)}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
        *(f"{k}: {v}" for k, v in response.headers.items()),
    ]
    if not keep_alive:
        lines.append("Connection: close")
    elif head is not None and head.version == "HTTP/1.0":
        lines.append("Connection: keep-alive")
    body = b"" if method == "HEAD" else response.body
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
