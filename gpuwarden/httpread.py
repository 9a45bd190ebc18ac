"""Bounded HTTP reads from neighbours the agent does not control: an inference server's /metrics, an engine.

A neighbour may be broken or hostile, and the agent must survive it on the node it watches. So every
read here has
- a total deadline over connect, headers and body together: a per-read timeout (what requests and urllib3
  offer) lets a server that trickles one byte a second hold the read, and the thread, forever;
- a cap on the body after decompression, checked while reading: a 50 MB page, an endless chunked body or
  a gzip bomb (1000:1) fails at the cap instead of growing the agent by gigabytes;
- redirects followed only within the same scheme, host and port unless the caller allows other hosts: a
  metrics URL that sends the agent elsewhere is a misconfiguration or an attack, not an answer.
Past a limit the read fails with a `ReadError` that names the limit and its setting.

It is the standard library's http.client under a socket whose every operation gets the time left before
the deadline; no thread is spawned per request.
"""

from __future__ import annotations

import http.client
import io
import json
import ssl
import time
import zlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

_REDIRECTS = (301, 302, 303, 307, 308)
_MAX_REDIRECTS = 5
_CHUNK = 64 * 1024


class ReadError(Exception):
    """The read failed; `kind` classifies it (timeout, unreachable, too_large, bad_response, redirect)."""

    def __init__(self, kind: str, url: str, detail: str) -> None:
        super().__init__(f"{url}: {detail}")
        self.kind, self.url, self.detail = kind, url, detail


@dataclass(frozen=True)
class Limits:
    deadline: float  # seconds for the whole exchange, redirects included
    max_body_bytes: int  # after decompression
    other_hosts: bool = False  # follow a redirect to another scheme, host or port
    follow_redirects: bool = True  # False: a 3xx is the answer (a peer that never redirects)
    ca_file: str | None = None  # PEM bundle to verify an HTTPS server (None: the system's CAs)
    # Setting names for the messages, so that an on-call engineer knows which key to change.
    deadline_key: str = "timeout"
    max_body_key: str = "max_body_bytes"


@dataclass(frozen=True)
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    url: str  # after redirects

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    method: str,
    url: str,
    limits: Limits,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> Reply:
    """One HTTP exchange within `limits`; raises ReadError with the reason when it cannot be had."""
    deadline = time.monotonic() + limits.deadline
    origin = _origin(url)
    for _ in range(_MAX_REDIRECTS + 1):
        try:
            reply = _exchange(method, url, deadline, limits, headers or {}, body)
        except TimeoutError:
            raise ReadError(
                "timeout", url, f"no complete answer within {limits.deadline:g}s ({limits.deadline_key})"
            ) from None
        except (http.client.HTTPException, zlib.error) as err:
            raise ReadError("bad_response", url, f"not a valid HTTP answer ({_describe(err)})") from None
        except OSError as err:
            raise ReadError("unreachable", url, str(err.strerror or err)) from None
        location = reply.headers.get("Location")
        if reply.status not in _REDIRECTS or not location or not limits.follow_redirects:
            return reply
        target = urljoin(url, location)
        if _origin(target) != origin and not limits.other_hosts:
            raise ReadError("redirect", url, f"redirected to another host ({target}); not followed")
        if reply.status == 303 or (reply.status in (301, 302) and method == "POST"):
            method, body = "GET", None  # what browsers and requests do
        url = target
    raise ReadError("redirect", url, f"more than {_MAX_REDIRECTS} redirects")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return (
        parts.scheme,
        (parts.hostname or "").lower(),
        parts.port or (443 if parts.scheme == "https" else 80),
    )


def _describe(err: Exception) -> str:
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def _exchange(
    method: str, url: str, deadline: float, limits: Limits, headers: dict[str, str], body: bytes | None
) -> Reply:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ReadError("bad_response", url, "not an http(s) URL")
    left = _left(deadline)
    conn: _HTTPConnection | _HTTPSConnection
    if parts.scheme == "https":
        context = ssl.create_default_context(cafile=limits.ca_file)
        conn = _HTTPSConnection(parts.hostname, parts.port or 443, timeout=left, context=context)
    else:
        conn = _HTTPConnection(parts.hostname, parts.port or 80, timeout=left)
    conn.deadline = deadline  # read by connect(), which http.client calls from request()
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # A fresh connection each time: the exchange is bounded as a whole, and no half-read body of a
    # failed exchange can leak into the next one.
    sent = {"Accept-Encoding": "gzip", "Connection": "close", **headers}
    try:
        conn.request(method, target, body=body, headers=sent)
        response = conn.getresponse()
        data = _read_body(response, limits, url)
        return Reply(response.status, response.headers, data, url)
    finally:
        conn.close()


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


def _read_body(response: http.client.HTTPResponse, limits: Limits, url: str) -> bytes:
    encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        # 32 + 15: accept a gzip or a zlib header (servers label zlib streams `deflate`).
        decoder: zlib._Decompress | None = zlib.decompressobj(32 + zlib.MAX_WBITS)
    elif encoding == "identity":
        decoder = None
    else:
        raise ReadError("bad_response", url, f"unsupported Content-Encoding {encoding[:40]!r}")
    cap = limits.max_body_bytes
    out = io.BytesIO()
    inflating = False  # the decoder has input of a member whose end it has not seen
    while True:
        raw = response.read(_CHUNK)  # read(amt), unlike read(), stops at amt bytes
        if not raw:
            break
        if decoder is None:
            out.write(raw)
        else:
            # max_length bounds what one call inflates; the rest of the input waits in unconsumed_tail.
            pending = raw
            while pending and out.tell() <= cap:
                inflating = True
                out.write(decoder.decompress(pending, cap + 1 - out.tell()))
                pending = decoder.unconsumed_tail
                if decoder.eof:  # a second gzip member follows, as `cat a.gz b.gz` makes
                    pending, inflating = decoder.unused_data, False
                    decoder = zlib.decompressobj(32 + zlib.MAX_WBITS)
        if out.tell() > cap:
            raise ReadError("too_large", url, f"body larger than {cap} bytes ({limits.max_body_key})")
    if inflating:
        raise ReadError("bad_response", url, f"the {encoding} body ends before its compressed stream does")
    return out.getvalue()


class _DeadlineSocket:
    """A socket whose every send and receive may take only the time left before the deadline."""

    def __init__(self, sock: Any, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def arm(self) -> None:
        self._sock.settimeout(_left(self._deadline))

    def sendall(self, data: Any) -> None:
        self.arm()
        self._sock.sendall(data)

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        # The real socket's file holds a reference to it, so http.client's early close() of a
        # `Connection: close` exchange leaves the body readable, as with a plain socket.
        return io.BufferedReader(_DeadlineReader(self, self._sock.makefile("rb", buffering=0)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _DeadlineReader(io.RawIOBase):
    def __init__(self, sock: _DeadlineSocket, raw: io.RawIOBase) -> None:
        self._sock, self._raw = sock, raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        self._sock.arm()
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _TCPConnection(http.client.HTTPConnection):
    deadline: float

    def connect(self) -> None:
        super().connect()  # TCP, within the time left at the start
        # What follows on this socket (an HTTPS handshake) gets the time left now, not the same again: a
        # slow connect and a trickling handshake together stay within the deadline.
        self.sock.settimeout(_left(self.deadline))


class _HTTPConnection(_TCPConnection):
    def connect(self) -> None:
        super().connect()
        self.sock = _DeadlineSocket(self.sock, self.deadline)


class _HTTPSConnection(http.client.HTTPSConnection, _TCPConnection):
    # Method order: HTTPSConnection.connect's own super().connect() is _TCPConnection's TCP connect.
    def connect(self) -> None:
        super().connect()  # TCP, then the TLS handshake (which the stdlib bounds by the socket's timeout)
        self.sock = _DeadlineSocket(self.sock, self.deadline)
