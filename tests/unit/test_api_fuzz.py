"""10,000 generated requests against every /v1 route, in-process through the HTTP layer's own request
parsing, routing and checks (`parse_head`, `Router.resolve`, `Router.check`) and a real engine: no answer
is a 5xx, no handler raises, and nothing starts, pauses or resumes without a valid write token."""

from __future__ import annotations

import json
import os
import shutil
import string
import tempfile
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpuwarden.agent.http import HTTPError, Limits, Request, Router, parse_head
from tests.unit.api_support import ALERTNAME, READ, WRITE, api, engine, webhook

EXAMPLES = 10_000
LIMITS = Limits()
PLAYBOOKS = ["worker_restart", "memory_fraction", "nope", "", "..", "%2e%2e", "worker_restart%00"]
BASES = [
    *("/v1/alerts", "/v1/runs", "/v1/pause", "/v1/resume", "/v1/reset", "/v1/remediations/", "/v1/runs/"),
    *("/v1", "/"),
]
SUFFIXES = ["", "/", "?limit=5", "?limit=0", "?playbook=x&limit=abc"]
CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "text/plain", ""]
METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"]
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"))
path_text = st.text(string.ascii_letters + string.digits + "-._~%/?=&#", max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@st.composite
def paths(draw: st.DrawFn) -> str:
    base = draw(st.sampled_from(BASES))
    if base.endswith("/") and base != "/":
        base += draw(st.sampled_from(PLAYBOOKS) | path_text)
    return base + draw(st.sampled_from(SUFFIXES) | path_text)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["bytes", "json", "webhook", "manual", "pause", "empty"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "empty":
        return b""
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    if kind == "webhook":
        payload: dict[str, Any] = webhook(
            draw(st.sampled_from([ALERTNAME, "Other"])),
            draw(st.sampled_from(["firing", "resolved"])),
            instance=draw(st.sampled_from(["gpu-1:9837", "gpu-2:9837", ""])),
        )
        payload["alerts"][0]["fingerprint"] = draw(st.text(string.hexdigits, min_size=1, max_size=16))
        field = draw(st.sampled_from(["", "version", "status", "alerts", "receiver", "truncatedAlerts"]))
        if field:
            payload[field] = draw(json_values)
        return json.dumps(payload).encode()
    body: dict[str, Any] = {"reason": draw(st.text(max_size=20))}
    if kind == "manual":
        body.update(
            draw(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "dry_run": st.booleans() | json_values,
                        "params": st.dictionaries(st.text(max_size=8), json_values, max_size=3),
                        "target": st.sampled_from(["worker", "other"]) | json_values,
                        "extra": json_values,
                    },
                )
            )
        )
    else:
        body["playbook"] = draw(st.sampled_from([*PLAYBOOKS, None]) | json_values)
    return json.dumps(body).encode()


AUTH = st.sampled_from([f"Bearer {WRITE}", f"Bearer {READ}", f"Bearer {WRITE[:-1]}", "", f"Basic {WRITE}"])


@st.composite
def requests_(draw: st.DrawFn) -> tuple[bytes, bytes, str]:
    method = draw(st.sampled_from(METHODS) | st.text(string.ascii_uppercase, min_size=1, max_size=8))
    authorization = draw(AUTH | header_text)
    headers = {"Authorization": authorization}
    headers["Content-Type"] = draw(st.sampled_from(CONTENT_TYPES) | header_text)
    if draw(st.booleans()):
        headers["Gpuwarden-Forwarded"] = draw(st.sampled_from(["0", "1", "17", "-1", "x"]) | header_text)
    body = draw(bodies())
    head = f"{method} {draw(paths())} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    head += f"Content-Length: {len(body)}\r\n"
    return head.encode("latin-1"), body, authorization


def answer(router: Router, raw_head: bytes, body: bytes) -> tuple[int, dict[str, Any] | None]:
    """What the layer answers: its own refusals as HTTPError, else the handler's response (not caught:
    an exception fails the test, where the server would have turned it into a 500)."""
    try:
        head = parse_head(raw_head)
        route, params = router.resolve(head.method, head.path)
        router.check(route, head.headers, head.length)
        if head.length > LIMITS.max_body_bytes:
            raise HTTPError(413, "too large")
    except HTTPError as err:
        return err.status, None
    request = Request(head.method, head.path, head.query, head.headers, body, "127.0.0.1:1", params)
    response = route.handler(request)
    return response.status, json.loads(response.body)


def test_no_generated_request_gets_a_5xx_and_nothing_runs_without_a_valid_token(tmp_path: Path) -> None:
    # The audit log fsyncs every record (3 ms on a disk here): on tmpfs, where fsync costs nothing, the
    # 10,000 requests take a third of the time. Its durability is the remediation tests' business.
    shm = Path("/dev/shm")
    audit_dir = Path(tempfile.mkdtemp(dir=shm)) if shm.is_dir() and os.access(shm, os.W_OK) else tmp_path
    eng = engine(audit_dir).start()
    router = Router(api(tmp_path, eng).routes())
    accepted: set[str] = set()
    pauses = resets = 0
    seen = 0

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(requests_())
    def one(request: tuple[bytes, bytes, str]) -> None:
        nonlocal pauses, resets, seen
        raw_head, body, authorization = request
        seen += 1
        status, reply = answer(router, raw_head, body)
        assert status < 500, (raw_head, body, reply)
        assert reply is None or isinstance(reply.get("error", ""), str)
        valid = authorization.strip() in (f"Bearer {WRITE}", f"Bearer {READ}")
        if reply is not None and not valid:
            assert status == 401, (raw_head, body, reply)
        if reply is not None and status in (200, 202):
            assert valid
            accepted.update(x for x in [reply.get("run")] if x)
            for alert in reply.get("alerts", []):
                accepted.update(alert.get("runs", []))
            if reply.get("status") in ("paused", "resumed", "reset"):
                assert authorization.strip() == f"Bearer {WRITE}"
                pauses += reply["status"] != "reset"
                resets += reply["status"] == "reset"

    try:
        one()
        deadline = time.monotonic() + 30
        while eng._queue.qsize() and time.monotonic() < deadline:  # let queued runs reach the audit log
            time.sleep(0.1)
        time.sleep(0.5)
        records = eng.audit_records()
    finally:
        eng.stop()
        if audit_dir != tmp_path:
            shutil.rmtree(audit_dir, ignore_errors=True)
    assert seen >= EXAMPLES
    started = {r["run"] for r in records if r["step"] == "trigger"}
    assert started <= accepted
    assert len([r for r in records if r["step"] in ("pause", "resume")]) == pauses
    assert len([r for r in records if r["step"] == "reset"]) == resets  # each audited, none without a token
