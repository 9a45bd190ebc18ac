"""One HTTP layer for the agent and the reference worker: routes, per-route auth, limits, JSON errors.

A `Route` maps a method and a path pattern (`/v2/models/{model}/infer`) to a handler `(Request) -> Response`,
with an auth policy (open, or `Bearer` tokens compared in constant time) and the content type its body must
have. The layer answers everything a handler should not see with a JSON error `{"error": "..."}`: a malformed
request (400), an unknown path (404) or method (405), a missing or wrong token (401), a body of the wrong
type (415), too large (413) or without a length (411). `http_loop.Server` does the I/O; this module is pure.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qsl, unquote

from prometheus_client.metrics_core import Metric

from gpuwarden.catalog import Families, MetricSpec


@dataclass(frozen=True)
class Limits:
    """What one client may cost; `agent.http` in the config (docs/operations.md says why each value)."""

    max_connections: int = 1024  # open sockets, idle ones included; past it the longest-idle is closed
    handler_threads: int = 8  # threads running handlers; idle and slow clients never hold one
    backlog: int = 1024  # listen() queue; Linux caps it at net.core.somaxconn (4096 since 5.4)
    max_header_bytes: int = 16 * 1024  # request line + headers (431 past it)
    max_body_bytes: int = 1 << 20  # request body (413 past it, refused before it is read)
    handshake_timeout: float = 5.0  # TLS handshake, from accept
    request_timeout: float = 10.0  # from a request's first byte to its last body byte
    idle_timeout: float = 120.0  # a keep-alive connection between requests (Prometheus scrapes every 60 s)
    write_timeout: float = 10.0  # for the client to take the whole response


class HTTPError(Exception):
    """A request the layer refuses; becomes `{"error": message}` with `status`, then the connection closes."""

    def __init__(self, status: int, message: str, reason: str = "bad_request") -> None:
        super().__init__(message)
        self.status, self.message, self.reason = status, message, reason


class Headers(Mapping[str, str]):
    """Request headers, looked up case-insensitively; repeated headers are joined with ", "."""

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        self._items = {k.lower(): v for k, v in (items or {}).items()}

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # percent-decoded, without the query and without a trailing slash
    query: Mapping[str, str]  # the first value of each parameter
    headers: Headers
    body: bytes = b""  # already within `Limits.max_body_bytes`
    peer: str = ""  # "host:port" of the client
    params: Mapping[str, str] = field(default_factory=dict)  # from the path pattern's {names}
    route: str = ""  # the matched route's pattern ("" when none matched)


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)


def json_response(status: int, obj: object, headers: Mapping[str, str] | None = None) -> Response:
    return Response(status, json.dumps(obj).encode() + b"\n", "application/json", headers or {})


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return json_response(status, {"error": message}, headers)


def same_token(given: bytes, token: bytes) -> bool:
    """Compare in constant time. hmac is imported here, not at the top: it loads OpenSSL's libcrypto
    (3.5 MB, gpuwarden/deferred.py), and only an agent with tokens configured compares any."""
    import hmac

    return hmac.compare_digest(given, token)


class Bearer:
    """`Authorization: Bearer <token>` with one of `tokens`; every token is compared, in constant time."""

    def __init__(self, tokens: Iterable[str]) -> None:
        self._tokens = tuple(t.encode() for t in tokens if t)
        if not self._tokens:
            raise ValueError("a bearer policy needs at least one non-empty token")

    def allows(self, headers: Headers) -> bool:
        scheme, _, supplied = headers.get("authorization", "").partition(" ")
        given = supplied.strip().encode("latin-1", "replace")
        matched = False
        for token in self._tokens:  # no early exit: the time taken does not say which token was close
            matched |= same_token(given, token)
        return scheme.lower() == "bearer" and matched


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    method: str
    path_pattern: str  # "/v2/models/{model}/infer": a {name} matches one path segment
    handler: Handler
    auth: Bearer | None = None  # None: open
    content_type: str | None = None  # a request body must be this media type (415 otherwise)
    # Quick handlers that never block (pre-rendered bytes, a lookup) run on the I/O thread, so they never
    # wait behind slow handlers; everything else runs on the handler threads.
    inline: bool = False


_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _compile(pattern: str) -> re.Pattern[str]:
    if not pattern.startswith("/"):
        raise ValueError(f"path pattern must start with '/': {pattern!r}")
    parts, last = [], 0
    for m in _PARAM.finditer(pattern):
        parts += [re.escape(pattern[last : m.start()]), f"(?P<{m.group(1)}>[^/]+)"]
        last = m.end()
    parts.append(re.escape(pattern[last:]))
    return re.compile("".join(parts))


class Router:
    """The route table; `add` may be called while serving (the table is swapped, never edited in place)."""

    def __init__(self, routes: Iterable[Route] = ()) -> None:
        self._table: tuple[tuple[re.Pattern[str], Route], ...] = ()
        self._lock = threading.Lock()
        for route in routes:
            self.add(route)

    def add(self, route: Route) -> None:
        with self._lock:
            if any(r.method == route.method and r.path_pattern == route.path_pattern for _, r in self._table):
                raise ValueError(f"route {route.method} {route.path_pattern} is already defined")
            self._table = (*self._table, (_compile(route.path_pattern), route))

    def resolve(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route for `method path` and its path parameters; HTTPError 404 or 405 when none."""
        allowed = []
        wanted = "GET" if method == "HEAD" else method
        for pattern, route in self._table:
            m = pattern.fullmatch(path)
            if m is None:
                continue
            if route.method == wanted:
                return route, m.groupdict()
            allowed.append(route.method)
        if allowed:
            raise HTTPError(405, f"{method} is not allowed on {path}; use {', '.join(sorted(allowed))}")
        raise HTTPError(404, f"no route for {method} {path}", reason="not_found")

    def check(self, route: Route, headers: Headers, length: int) -> None:
        """Auth and content type: decided from the head, before any of the body is read."""
        if route.auth is not None and not route.auth.allows(headers):
            raise HTTPError(401, "missing or wrong bearer token", reason="unauthorized")
        if route.content_type and length:
            media = headers.get("content-type", route.content_type).split(";")[0].strip().lower()
            if media != route.content_type:
                raise HTTPError(415, f"body must be {route.content_type}", reason="bad_request")


# -- the request head -------------------------------------------------------------------------------
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token: methods and header names
_DIGITS = re.compile(r"[0-9]{1,15}")  # Content-Length: ASCII digits only; 15 digits is far past any limit
_LINES = re.compile(r"\r?\n")
MAX_HEADERS = 100


@dataclass(frozen=True)
class Head:
    method: str
    path: str
    query: dict[str, str]
    version: str
    headers: Headers
    length: int  # Content-Length, 0 when absent

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection


def parse_head(raw: bytes) -> Head:
    """Request line and headers (without the blank line) → Head; HTTPError says what is wrong."""
    lines = _LINES.split(raw.decode("latin-1"))
    parts = lines[0].split(" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]):
        raise HTTPError(400, "malformed request line")
    method, target, version = parts
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise HTTPError(505, "only HTTP/1.0 and HTTP/1.1 are served")
    if not target.startswith("/"):
        raise HTTPError(400, "the request target must be a path starting with '/'")
    if len(lines) - 1 > MAX_HEADERS:
        raise HTTPError(431, f"more than {MAX_HEADERS} header lines", reason="header_too_large")
    fields: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN.fullmatch(name):  # also refuses obsolete line folding (leading space)
            raise HTTPError(400, "malformed header line")
        key, value = name.lower(), value.strip(" \t")
        if key in fields and key in ("content-length", "transfer-encoding", "authorization", "content-type"):
            raise HTTPError(400, f"repeated {name} header")
        fields[key] = f"{fields[key]}, {value}" if key in fields else value
    if "transfer-encoding" in fields:
        raise HTTPError(411, "chunked request bodies are not accepted; send Content-Length")
    length_text = fields.get("content-length", "0")
    if not _DIGITS.fullmatch(length_text):
        raise HTTPError(400, "Content-Length must be a non-negative integer")
    path, _, query = target.partition("?")
    path = unquote(path.split("#", 1)[0]).rstrip("/") or "/"
    params: dict[str, str] = {}
    for key, value in parse_qsl(query.split("#", 1)[0], keep_blank_values=True):
        params.setdefault(key, value)
    return Head(method, path, params, version, Headers(fields), int(length_text))


def reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


# -- what clients cost us: counted, never logged per event --------------------------------------------
CATALOG = (
    MetricSpec(
        "gpuwarden_http_client_errors_total",
        "counter",
        "Requests and connections the HTTP server refused or cut, by reason (see docs/operations.md).",
        labels=("reason",),
    ),
    MetricSpec("gpuwarden_http_connections", "gauge", "Open client connections, idle ones included."),
    MetricSpec(
        "gpuwarden_http_connections_max", "gauge", "The connection limit (agent.http.max_connections)."
    ),
)
REASONS = (
    "bad_request",
    "not_found",
    "unauthorized",
    "header_too_large",
    "body_too_large",
    "request_timeout",
    "write_timeout",
    "handshake_failed",
    "handshake_timeout",
    "reset",
    "connection_limit",
)


class Stats:
    """Counters the I/O thread bumps and the agent's exposition reads; one instance outlives servers."""

    def __init__(self) -> None:
        self.client_errors = dict.fromkeys(REASONS, 0)
        self.connections = 0
        self.max_connections = 0

    def count(self, reason: str) -> None:
        self.client_errors[reason] = self.client_errors.get(reason, 0) + 1

    def collect(self) -> Iterator[Metric]:
        fams = Families(CATALOG)
        for reason, value in sorted(self.client_errors.items()):
            fams.add("gpuwarden_http_client_errors_total", value, reason=reason)
        fams.add("gpuwarden_http_connections", self.connections)
        fams.add("gpuwarden_http_connections_max", self.max_connections)
        yield from fams
