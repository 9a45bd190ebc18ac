"""The reference worker's fault requests and KServe request parsing, table-tested."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from gpuwarden.worker.faults import Fault, FaultError, FaultState, parse_request
from gpuwarden.worker.server import parse_infer


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "body must be a JSON object"),
        ({"fault": "melt"}, "fault: must be one of errors, latency, hang, crash, wrong, none"),
        ({"fault": "errors", "rate": 1.5}, "rate: must be between 0 and 1"),
        ({"fault": "latency", "latency_s": -1}, "latency_s: must be a number >= 0"),
        ({"fault": "errors", "duration_s": True}, "duration_s: must be a number >= 0"),
        ({"fault": "errors", "when": "now"}, "unknown field(s): when"),
    ],
)
def test_bad_fault_requests_are_refused_naming_the_field(body: object, message: str) -> None:
    with pytest.raises(FaultError, match="^" + message.replace("(", r"\(").replace(")", r"\)") + "$"):
        parse_request(body)


def test_a_fault_with_a_duration_expires_by_itself() -> None:
    state = FaultState()
    state.set(parse_request({"fault": "errors", "duration_s": 0.05}))
    assert state.current().kind == "errors" and state.hits("errors") is not None
    time.sleep(0.08)
    assert state.current() == Fault() and state.hits("errors") is None


def test_rate_zero_affects_no_request_and_rate_one_every_request() -> None:
    state = FaultState()
    state.set(parse_request({"fault": "wrong", "rate": 0}))
    assert not any(state.hits("wrong") for _ in range(200))
    state.set(parse_request({"fault": "wrong", "rate": 1}))
    assert all(state.hits("wrong") for _ in range(200))


def test_kserve_request_with_nested_rows_parses_like_a_flat_one() -> None:
    flat = {"inputs": [{"name": "input", "shape": [2, 8], "datatype": "FP32", "data": list(range(16))}]}
    nested = {"inputs": [{**flat["inputs"][0], "data": [list(range(8)), list(range(8, 16))]}], "id": 7}
    x1, id1 = parse_infer(json.dumps(flat).encode())
    x2, id2 = parse_infer(json.dumps(nested).encode())
    np.testing.assert_array_equal(x1, x2)
    assert (id1, id2) == (None, "7") and x1.dtype == np.float32


@pytest.mark.parametrize(
    ("request_body", "message"),
    [
        (b"not json", "request body is not JSON"),
        (b'{"inputs": []}', "'inputs' must hold exactly one tensor named 'input'"),
        (b'{"inputs": [{"name": "input", "datatype": "INT8", "shape": [1, 8]}]}', "datatype FP32"),
        (
            b'{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 8], "data": [1]}]}',
            "does not fill",
        ),
    ],
)
def test_malformed_kserve_requests_say_what_is_wrong(request_body: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_infer(request_body)
