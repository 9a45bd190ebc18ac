"""One client connection as the HTTP server's I/O thread sees it: a state, a deadline and its buffers."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gpuwarden.agent.http import Head, Route

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
        *("head", "route", "params", "keep_alive", "refused", "discarded"),
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
