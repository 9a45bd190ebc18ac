"""Inference collector on captured expositions of vLLM, Triton, SGLang and a generic PyTorch server.

Each case serves its captures over a real local HTTP server, 15 s apart on an injected clock, and checks
the figures against values worked out by hand from the captures (see the comments per case).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from gpuwarden.agent.registry import CollectionFailed, CollectorContext
from gpuwarden.catalog import catalog_names
from gpuwarden.collectors.inference import InferenceCollector
from gpuwarden.collectors.inference.catalog import CATALOG
from gpuwarden.collectors.inference.settings import InferenceSettings
from gpuwarden.config import AgentConfig, ConfigError, from_mapping
from gpuwarden.health import Action, HealthResult, State
from tests.golden import assert_golden, exposition, split

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "inference"

GENERIC_MAPPING: dict[str, Any] = {
    "requests": {"metric": "app_requests_total", "match": {"route": "/predict"}},
    "errors": {"metric": "app_requests_total", "match": {"route": "/predict", "code": "5.."}},
    "latency_histogram": {"metric": "app_request_latency_seconds"},
    "ttft_histogram": {"metric": "app_time_to_first_token_seconds"},
    "running_requests": {"metric": "app_inflight_requests"},
    "queue_length": {"metric": "app_queue_depth"},
    "kv_cache_usage": {"metric": "app_kv_cache_usage_ratio", "aggregate": "max"},
    "memory_reserved": {"metric": "torch_cuda_memory_reserved_bytes"},
    "memory_allocated": {"metric": "torch_cuda_memory_allocated_bytes"},
}


class Target:
    """A real HTTP server standing in for the inference server: serves whatever `body` holds."""

    def __init__(self) -> None:
        self.body, self.status = b"", 200
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                self.send_response(target.status)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(target.body)))
                self.end_headers()
                self.wfile.write(target.body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/metrics"
        threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True).start()

    def serve(self, capture: str) -> None:
        self.body = (FIXTURES / f"{capture}.prom").read_bytes()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def target() -> Iterator[Target]:
    t = Target()
    yield t
    t.close()


def make(url: str, clock: Clock, **settings: Any) -> InferenceCollector:
    s = InferenceSettings.model_validate({"enabled": True, "url": url, **settings})
    ctx = CollectorContext(paths=AgentConfig().paths.paths(), log=logging.getLogger("test"))
    return InferenceCollector(s, ctx, clock=clock)


def run(target: Target, captures: list[str], **settings: Any) -> tuple[list[Any], list[HealthResult]]:
    clock = Clock()
    collector = make(target.url, clock, **settings)
    items: list[object] = []
    for capture in captures:
        target.serve(capture)
        items = list(collector.collect())
        clock.t += 15
    collector.close()
    return split(items)


def values(metrics: list[Any]) -> dict[str, float]:
    out = {}
    for family in metrics:
        for sample in family.samples:
            key = sample.name + "".join(f"{{{k}={v}}}" for k, v in sorted(sample.labels.items()))
            out[key] = sample.value
    return out


CASES: dict[str, tuple[list[str], dict[str, Any], dict[str, float]]] = {
    # http_requests_total on /v1/chat/completions: +270 2xx, +30 5xx, +0 4xx in 15 s; /metrics, /health
    # and /v1/models are not inference. e2e histogram: +270 observations, sum +324.
    "vllm": (
        ["vllm-0", "vllm-1"],
        {},
        {
            "gpuwarden_inference_requests_per_second": 20.0,
            "gpuwarden_inference_error_ratio": 0.1,
            "gpuwarden_inference_latency_seconds{quantile=0.5}": 1.0,
            "gpuwarden_inference_latency_seconds{quantile=0.9}": 2.0,
            "gpuwarden_inference_latency_seconds{quantile=0.99}": 5.5,
            "gpuwarden_inference_latency_mean_seconds": 1.2,
            # TTFT +270: 67 in (0.04, 0.06] fill p50's rank exactly; 68 in (0.08, 0.1] hold p99's.
            "gpuwarden_inference_time_to_first_token_seconds{quantile=0.5}": 0.06,
            "gpuwarden_inference_time_to_first_token_seconds{quantile=0.99}": 0.08 + 0.02 * 65.3 / 68,
            "gpuwarden_inference_queue_length": 3.0,
            "gpuwarden_inference_running_requests": 12.0,
            "gpuwarden_inference_batch_size": 12.0,
            "gpuwarden_inference_kv_cache_usage_ratio": 0.42,
            "gpuwarden_inference_server_restarts_total": 0.0,
        },
    ),
    # The server restarted before the third capture: 300 requests before it, 60 after, over 30 s.
    "vllm-restart": (
        ["vllm-0", "vllm-1", "vllm-2"],
        {},
        {
            "gpuwarden_inference_requests_per_second": 12.0,
            "gpuwarden_inference_error_ratio": 30 / 360,
            "gpuwarden_inference_latency_mean_seconds": (324 + 60) / (270 + 60),
            "gpuwarden_inference_server_restarts_total": 1.0,
            "gpuwarden_inference_window_seconds": 30.0,
        },
    ),
    # Success +450 +150, failures +5 +1 (reasons summed) in 15 s; duration_us +3.6e6 +3.0e6 over 600
    # successes; batch size = (1800 + 150) inferences / (225 + 150) executions; p99 = worst model's.
    "triton": (
        ["triton-0", "triton-1"],
        {"profile": "triton"},
        {
            "gpuwarden_inference_requests_per_second": 606 / 15,
            "gpuwarden_inference_error_ratio": 6 / 606,
            "gpuwarden_inference_latency_seconds{quantile=0.5}": 0.019,
            "gpuwarden_inference_latency_seconds{quantile=0.9}": 0.024,
            "gpuwarden_inference_latency_seconds{quantile=0.99}": 0.031,
            "gpuwarden_inference_latency_mean_seconds": 0.011,
            "gpuwarden_inference_batch_size": 5.2,
            "gpuwarden_inference_queue_length": 5.0,
        },
    ),
    # num_requests_total +240, aborted +6; e2e +240 observations: 24 in (0.8, 1], 96 in (1, 2], 22 in
    # (2, 4] where the 0.99 rank (237.6) sits 21.6 deep.
    "sglang": (
        ["sglang-0", "sglang-1"],
        {"profile": "sglang"},
        {
            "gpuwarden_inference_requests_per_second": 16.0,
            "gpuwarden_inference_error_ratio": 0.025,
            "gpuwarden_inference_latency_seconds{quantile=0.5}": 1.0,
            "gpuwarden_inference_latency_seconds{quantile=0.9}": 2.0,
            "gpuwarden_inference_latency_seconds{quantile=0.99}": 2 + 2 * 21.6 / 22,
            "gpuwarden_inference_latency_mean_seconds": 1.25,
            "gpuwarden_inference_queue_length": 7.0,
            "gpuwarden_inference_running_requests": 20.0,
            "gpuwarden_inference_kv_cache_usage_ratio": 0.63,
        },
    ),
    # /predict +90 200s, +5 500s, +5 503s; two GPUs with 40 GB reserved and 30 GB allocated each.
    "generic": (
        ["generic-0", "generic-1"],
        {"profile": "generic", "mapping": GENERIC_MAPPING},
        {
            "gpuwarden_inference_requests_per_second": 100 / 15,
            "gpuwarden_inference_error_ratio": 0.1,
            "gpuwarden_inference_latency_seconds{quantile=0.5}": 0.05 + 0.05 * 40 / 50,
            "gpuwarden_inference_latency_seconds{quantile=0.99}": 0.25 + 0.25 * 4 / 5,
            "gpuwarden_inference_latency_mean_seconds": 0.12,
            "gpuwarden_inference_memory_fragmentation_ratio": 0.25,
            "gpuwarden_inference_time_to_first_token_seconds{quantile=0.5}": 0.05,
            "gpuwarden_inference_batch_size": 3.0,
        },
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_figures_match_the_values_worked_out_from_the_captures(target: Target, case: str) -> None:
    captures, settings, expected = CASES[case]
    metrics, _ = run(target, captures, **settings)
    got = values(metrics)
    assert {k: got.get(k) for k in expected} == pytest.approx(expected)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_exposition_matches_its_golden_file(target: Target, case: str) -> None:
    captures, settings, _ = CASES[case]
    metrics, _ = run(target, captures, **settings)
    assert_golden(exposition(metrics), FIXTURES / "golden" / f"{case}.prom")


def test_a_full_mapping_emits_exactly_the_catalog(target: Target) -> None:
    metrics, _ = run(target, ["generic-0", "generic-1"], profile="generic", mapping=GENERIC_MAPPING)
    assert {m.name + ("_total" if m.type == "counter" else "") for m in metrics} == catalog_names(CATALOG)


def test_no_rate_is_negative_across_a_server_restart(target: Target) -> None:
    metrics, _ = run(target, ["vllm-1", "vllm-2"])  # only the restart in the window
    got = values(metrics)
    assert got["gpuwarden_inference_requests_per_second"] == 4.0  # 60 requests since the restart
    assert all(v >= 0 for v in got.values())


def test_an_error_ratio_over_the_threshold_degrades_health(target: Target) -> None:
    _, health = run(target, ["vllm-0", "vllm-1"])
    (errors,) = [h for h in health if h.component == "inference.errors"]
    assert errors.state == State.DEGRADED
    assert errors.suggested_action == Action.CHECK_WORKLOAD
    assert "error ratio 10.00% over 300 requests" in errors.reason


def test_an_error_ratio_under_the_threshold_is_healthy(target: Target) -> None:
    _, health = run(target, ["vllm-0", "vllm-1"], error_ratio_threshold=0.2)
    assert [h.state for h in health if h.component == "inference.errors"] == [State.HEALTHY]


def test_too_few_requests_are_not_judged(target: Target) -> None:
    _, health = run(target, ["vllm-0", "vllm-1"], min_requests=1000)
    (errors,) = [h for h in health if h.component == "inference.errors"]
    assert errors.state == State.HEALTHY and "not judged" in errors.reason


def test_a_slow_p99_degrades_health_when_a_limit_is_set(target: Target) -> None:
    _, health = run(target, ["sglang-0", "sglang-1"], profile="sglang", latency_p99_max_seconds=2.5)
    (latency,) = [h for h in health if h.component == "inference.latency"]
    assert latency.state == State.DEGRADED and "p99 latency 3.964s above 2.5s" in latency.reason


def test_the_first_scrape_exports_gauges_but_no_rates(target: Target) -> None:
    metrics, health = run(target, ["vllm-0"])
    got = values(metrics)
    assert got["gpuwarden_inference_up"] == 1
    assert got["gpuwarden_inference_running_requests"] == 9
    assert "gpuwarden_inference_requests_per_second" not in got
    assert [h.state for h in health if h.component == "inference.errors"] == [State.UNKNOWN]


def test_an_unreachable_target_is_unknown_then_unhealthy_and_exports_no_stale_figures(target: Target) -> None:
    clock = Clock()
    collector = make(target.url, clock, unhealthy_after_failures=2)
    target.serve("vllm-0")
    list(collector.collect())
    target.close()
    states = []
    for _ in range(2):
        clock.t += 15
        items = list(collector.collect())
        assert any(isinstance(i, CollectionFailed) for i in items), "the collection must say it failed"
        metrics, health = split(items)
        (result,) = [h for h in health if h.component == "inference.target"]
        states.append(result.state)
    assert states == [State.UNKNOWN, State.UNHEALTHY]
    assert "cannot connect to" in result.reason and "2 scrapes in a row" in result.reason
    assert result.suggested_action == Action.RESTART_WORKER
    assert set(values(metrics)) == {
        "gpuwarden_inference_up",
        "gpuwarden_inference_scrape_duration_seconds",
        "gpuwarden_inference_server_restarts_total",
    }
    assert values(metrics)["gpuwarden_inference_up"] == 0


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (503, b"overloaded", "returned HTTP 503"),
        (200, b'vllm:num_requests_running{model_name="x" 3\n', "invalid Prometheus exposition"),
    ],
)
def test_a_bad_answer_is_unknown_with_its_reason(
    target: Target, status: int, body: bytes, reason: str
) -> None:
    target.status, target.body = status, body
    collector = make(target.url, Clock())
    _, health = split(collector.collect())
    assert [(h.state, reason in h.reason) for h in health] == [(State.UNKNOWN, True)]


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        (
            {"profile": "generic"},
            "collectors.inference.url: the generic profile needs the server's metrics URL",
        ),
        (
            {"profile": "generic", "url": "http://h:1/metrics"},
            "collectors.inference.mapping: the generic profile needs mapping.requests or mapping.success",
        ),
        ({"url": "localhost:8000"}, "collectors.inference.url: must be an http:// or https:// URL"),
        ({"window": 20}, "collectors.inference.window: must be at least twice the interval (30s)"),
        (
            {"scrape_timeout": 10},
            "collectors.inference.scrape_timeout: must be less than the collector timeout",
        ),
        (
            {"mapping": {"errors": {"metric": "x", "match": {"status": "5(xx"}}}},
            "collectors.inference.mapping.errors.match: label status: invalid regular expression",
        ),
        ({"mapping": {"errors": {"name": "x"}}}, "collectors.inference.mapping.errors.name: unknown key"),
        ({"profile": "tensorrt-llm"}, "collectors.inference.profile: must be one of"),
    ],
)
def test_bad_config_names_the_key_path(section: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        from_mapping({"collectors": {"inference": section}})
    assert any(p.startswith(problem) for p in err.value.problems), err.value.problems


def test_a_mapping_override_replaces_one_signal_of_a_profile(target: Target) -> None:
    # Count 4xx as errors too (a deployment where 429 means "shed by the server").
    override = {
        "errors": {"metric": "http_requests_total", "match": {"handler": "/v1/.*", "status": "[45].."}}
    }
    metrics, _ = run(target, ["vllm-0", "vllm-1"], mapping=override)
    got = values(metrics)
    assert got["gpuwarden_inference_error_ratio"] == pytest.approx(0.1)  # the 4xx count did not move
    assert got["gpuwarden_inference_latency_seconds{quantile=0.99}"] == pytest.approx(5.5)  # rest kept


def test_label_values_are_read_as_utf8_whatever_the_content_type_says(target: Target) -> None:
    # The target says `text/plain; version=0.0.4` without a charset; a regex on a Chinese model name
    # only matches if the body was decoded as UTF-8.
    clock = Clock()
    override = {"requests": {"metric": "http_requests_total", "match": {"model": "通义.*"}}}
    collector = make(target.url, clock, mapping=override)
    got: dict[str, float] = {}
    for count in (7, 22):
        target.body = f'http_requests_total{{handler="/v1/completions",model="通义千问"}} {count}\n'.encode()
        got = values(split(collector.collect())[0])
        clock.t += 15
    assert got["gpuwarden_inference_requests_per_second"] == 1.0


def test_an_idle_server_has_zero_qps_and_no_ratio_or_quantiles_rather_than_made_up_ones(
    target: Target,
) -> None:
    metrics, health = run(target, ["vllm-1", "vllm-1"])
    got = values(metrics)
    assert got["gpuwarden_inference_requests_per_second"] == 0
    assert not any(
        k.startswith(("gpuwarden_inference_error_ratio", "gpuwarden_inference_latency")) for k in got
    )
    (errors,) = [h for h in health if h.component == "inference.errors"]
    assert errors.state == State.HEALTHY and "0 requests in 15s" in errors.reason
