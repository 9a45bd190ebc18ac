"""The HTTP layer's pure parts: request heads, the route table, bearer tokens."""

from __future__ import annotations

import pytest

from gpuwarden.agent.http import (
    Bearer,
    Headers,
    HTTPError,
    Request,
    Response,
    Route,
    Router,
    parse_head,
)


@pytest.mark.parametrize(
    ("raw", "status", "message"),
    [
        (b"GET /metrics", 400, "malformed request line"),
        (b"GET  /metrics HTTP/1.1", 400, "malformed request line"),
        (b"G(T /metrics HTTP/1.1", 400, "malformed request line"),
        (b"GET /metrics HTTP/2.0", 505, "only HTTP/1.0 and HTTP/1.1 are served"),
        (b"GET http://evil/ HTTP/1.1", 400, "the request target must be a path starting with '/'"),
        (b"GET / HTTP/1.1\r\nno colon here", 400, "malformed header line"),
        (b"GET / HTTP/1.1\r\nHost: a\r\n folded", 400, "malformed header line"),
        (b"POST / HTTP/1.1\r\nContent-Length: -1", 400, "Content-Length must be a non-negative integer"),
        (b"POST / HTTP/1.1\r\nContent-Length: abc", 400, "Content-Length must be a non-negative integer"),
        (b"POST / HTTP/1.1\r\nContent-Length: \xb2", 400, "Content-Length must be a non-negative integer"),
        (b"POST / HTTP/1.1\r\nContent-Length: 1e3", 400, "Content-Length must be a non-negative integer"),
        (b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2", 400, "repeated Content-Length header"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked", 411, "chunked request bodies are not accepted"),
        (b"GET / HTTP/1.1" + b"\r\nX: y" * 101, 431, "more than 100 header lines"),
    ],
)
def test_a_malformed_head_is_refused_with_a_reason(raw: bytes, status: int, message: str) -> None:
    with pytest.raises(HTTPError) as caught:
        parse_head(raw)
    assert caught.value.status == status and caught.value.message.startswith(message)


def test_a_head_gives_method_decoded_path_query_and_case_insensitive_headers() -> None:
    head = parse_head(
        b"POST /v2/models/can%61ry/infer/?x=1&fail_status=503&x=2 HTTP/1.1\r\n"
        b"Host: node\r\nAccept: a\r\naccept: b\r\nContent-Length: 12"
    )
    assert (head.method, head.path, head.length) == ("POST", "/v2/models/canary/infer", 12)
    assert head.query == {"x": "1", "fail_status": "503"}
    assert head.headers["ACCEPT"] == "a, b" and "host" in head.headers
    assert head.keep_alive


@pytest.mark.parametrize(
    ("version", "connection", "keep"),
    [("1.1", "", True), ("1.1", "close", False), ("1.0", "", False), ("1.0", "Keep-Alive", True)],
)
def test_keep_alive_follows_the_version_and_the_connection_header(
    version: str, connection: str, keep: bool
) -> None:
    extra = f"\r\nConnection: {connection}" if connection else ""
    assert parse_head(f"GET / HTTP/{version}{extra}".encode()).keep_alive is keep


def ok(request: Request) -> Response:
    return Response(200, request.params.get("model", "").encode())


def test_routes_match_method_and_pattern_and_say_what_is_allowed() -> None:
    router = Router([Route("GET", "/v2/models/{model}", ok), Route("POST", "/v2/models/{model}/infer", ok)])
    route, params = router.resolve("GET", "/v2/models/canary")
    assert route.path_pattern == "/v2/models/{model}" and params == {"model": "canary"}
    assert router.resolve("HEAD", "/v2/models/canary")[0].method == "GET"
    with pytest.raises(HTTPError) as caught:
        router.resolve("DELETE", "/v2/models/canary/infer")
    assert caught.value.status == 405 and caught.value.message.endswith("use POST")
    for path in ("/v2/models/a/b", "/v2/models/", "/v2/models.x"):
        with pytest.raises(HTTPError) as caught:
            router.resolve("GET", path)
        assert caught.value.status == 404
    with pytest.raises(ValueError, match="already defined"):
        router.add(Route("GET", "/v2/models/{model}", ok))
    router.add(Route("GET", "/v1/added", ok))  # added while the table is in use
    assert router.resolve("GET", "/v1/added")[0].path_pattern == "/v1/added"


@pytest.mark.parametrize(
    ("authorization", "allowed"),
    [
        ("Bearer s3cret", True),
        ("bearer other-token", True),
        ("Bearer  s3cret ", True),
        ("Bearer s3cre", False),
        ("Bearer s3cret2", False),
        ("Basic s3cret", False),
        ("s3cret", False),
        ("", False),
        ("Bearer s3cr\xe9t", False),
    ],
)
def test_bearer_accepts_any_of_its_tokens_and_nothing_else(authorization: str, allowed: bool) -> None:
    headers = Headers({"Authorization": authorization} if authorization else {})
    assert Bearer(["s3cret", "other-token"]).allows(headers) is allowed


def test_a_bearer_policy_without_a_token_is_a_mistake() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Bearer(["", ""])


def test_auth_and_content_type_are_checked_from_the_head() -> None:
    route = Route("POST", "/v1/alerts", ok, auth=Bearer(["t"]), content_type="application/json")
    router = Router([route])
    with pytest.raises(HTTPError) as caught:
        router.check(route, Headers({"Content-Type": "application/json"}), 10)
    assert caught.value.status == 401
    auth = {"Authorization": "Bearer t"}
    with pytest.raises(HTTPError) as caught:
        router.check(route, Headers({**auth, "Content-Type": "text/plain"}), 10)
    assert caught.value.status == 415
    router.check(route, Headers({**auth, "Content-Type": "application/json; charset=utf-8"}), 10)
    router.check(route, Headers(auth), 10)  # no Content-Type: taken as the route's
    router.check(route, Headers({**auth, "Content-Type": "text/plain"}), 0)  # no body, nothing to check
