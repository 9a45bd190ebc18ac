"""The real reference worker against broken and hostile HTTP clients: a 4xx with a JSON reason, never a 5xx.

Each case failed before the worker shared the agent's HTTP layer: `Content-Length: -1` with a large body was
read whole (RSS 97 → 749 MB), `Content-Length: abc` got no answer, `latency_s=1e300` crashed the request,
and some fuzzed inference bodies got a 500.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.integration.worker_process import TOKEN, WorkerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    with WorkerProcess(tmp_path_factory.mktemp("worker")) as w:
        yield w


def raw_exchange(url: str, head: bytes, body_bytes: int = 0) -> tuple[int, dict[str, object]]:
    """Send `head`, then up to `body_bytes` of body from another thread, and read the answer."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(head)

        def pour() -> None:
            chunk = b"x" * 65536
            try:
                for _ in range(body_bytes // len(chunk)):
                    s.sendall(chunk)
            except OSError:
                pass  # the worker stopped reading, as it should

        sender = threading.Thread(target=pour, daemon=True)
        sender.start()
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.endswith(b"}\n"):
            data = s.recv(65536)
            if not data:
                break
            answer += data
    status = int(answer.split(b" ", 2)[1])
    return status, json.loads(answer.split(b"\r\n\r\n", 1)[1])


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_a_negative_content_length_is_refused_without_reading_the_body(worker: WorkerProcess) -> None:
    assert worker.proc is not None
    before = rss_bytes(worker.proc.pid)
    head = b"POST /v2/models/canary/infer HTTP/1.1\r\nHost: w\r\nContent-Length: -1\r\n\r\n"
    status, body = raw_exchange(worker.url, head, body_bytes=300 << 20)
    assert status == 400 and "Content-Length" in str(body["error"])
    assert rss_bytes(worker.proc.pid) - before < 20 << 20
    assert requests.get(worker.url + "/v2/health/live", timeout=5).status_code == 200


def test_a_content_length_that_is_not_a_number_gets_an_answer(worker: WorkerProcess) -> None:
    head = b"POST /v2/models/canary/infer HTTP/1.1\r\nHost: w\r\nContent-Length: abc\r\n\r\n"
    status, body = raw_exchange(worker.url, head)
    assert status == 400 and "non-negative integer" in str(body["error"])


def test_a_body_over_the_limit_is_refused_before_it_is_read(worker: WorkerProcess) -> None:
    head = b"POST /v2/models/canary/infer HTTP/1.1\r\nHost: w\r\nContent-Length: 300000000\r\n\r\n"
    status, body = raw_exchange(worker.url, head, body_bytes=8 << 20)
    assert status == 413 and "larger than" in str(body["error"])


@pytest.mark.parametrize("latency", ["1e300", "Infinity", "NaN", "3601"])
def test_an_admin_fault_with_an_absurd_latency_is_a_400(worker: WorkerProcess, latency: str) -> None:
    r = requests.post(
        worker.url + "/admin/fault",
        data=f'{{"fault": "latency", "latency_s": {latency}}}',
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        timeout=5,
    )
    assert r.status_code == 400 and r.json()["error"].startswith("latency_s: must be")
    assert (
        requests.get(worker.url + "/admin/fault", headers={"Authorization": f"Bearer {TOKEN}"}).json()[
            "fault"
        ]
        == "none"
    )


def test_the_admin_api_refuses_other_methods_and_types_with_json(worker: WorkerProcess) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    put = requests.put(worker.url + "/admin/fault", json={"fault": "none"}, headers=auth, timeout=5)
    assert put.status_code == 405 and "GET, POST" in put.json()["error"]
    text = requests.post(
        worker.url + "/admin/fault",
        data="fault=none",
        headers={**auth, "Content-Type": "text/plain"},
        timeout=5,
    )
    assert text.status_code == 415 and text.json() == {"error": "body must be application/json"}


# Bodies a confused or hostile client sends: JSON of any shape, near-miss KServe requests, raw bytes.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=6),
    max_leaves=40,
)
near_kserve = st.fixed_dictionaries(
    {
        "inputs": st.lists(
            st.fixed_dictionaries(
                {
                    "name": st.sampled_from(["input", "INPUT", ""]) | json_values,
                    "datatype": st.sampled_from(["FP32", "FP16"]) | json_values,
                    "shape": st.lists(
                        st.integers(-2, 2**70) | st.sampled_from([8, 1, 0]) | json_values, max_size=3
                    )
                    | json_values,
                    "data": st.lists(st.floats() | st.integers(-(2**80), 2**80) | json_values, max_size=24)
                    | json_values,
                }
            ),
            max_size=2,
        )
        | json_values,
        "id": json_values,
    }
)
bodies = (
    json_values.map(lambda v: json.dumps(v).encode())
    | near_kserve.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=200)
    | st.integers(1, 5000).map(lambda n: b"[" * n)  # nesting deeper than the JSON parser's stack
)


@settings(max_examples=1500, deadline=None)
@given(body=bodies, path=st.sampled_from(["/v2/models/canary/infer", "/v1/completions"]))
def test_fuzzed_inference_bodies_never_get_a_5xx(worker: WorkerProcess, body: bytes, path: str) -> None:
    r = requests.post(worker.url + path, data=body, headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code < 500, (r.status_code, r.text)
    if r.status_code >= 400:
        assert isinstance(r.json()["error"], str)
