"""Built-in profiles: the metric names vLLM, Triton and SGLang document for their /metrics endpoints.

Sources: vLLM "Production Metrics" (docs.vllm.ai, V1 engine names) and its OpenAI server, which counts
HTTP requests with prometheus-fastapi-instrumentator (`http_requests_total{handler,method,status}`,
status grouped as 2xx/4xx/5xx); Triton's user guide `metrics.md` (per-model `nv_inference_*` counters in
microseconds, summaries with `--metrics-config summary_latencies=true`); SGLang's "Production Metrics"
(`--enable-metrics`). None of the three exports allocator statistics, so fragmentation needs a `mapping`.
"""

from __future__ import annotations

from gpuwarden.collectors.inference.settings import Mapping, ProfileName, Selector

# The inference routes of an OpenAI-compatible or KServe v2 server: health, metrics and model listing
# requests would otherwise dilute the error ratio and inflate QPS.
INFERENCE_HANDLERS = (
    r"/v1/(chat/completions|completions|embeddings|responses)"
    r"|/generate|/invocations|/v2/models/[^/]+(/versions/[^/]+)?/infer"
)

VLLM = Mapping(
    requests=Selector(metric="http_requests_total", match={"handler": INFERENCE_HANDLERS}),
    errors=Selector(metric="http_requests_total", match={"handler": INFERENCE_HANDLERS, "status": "5.."}),
    latency_histogram=Selector(metric="vllm:e2e_request_latency_seconds"),
    ttft_histogram=Selector(metric="vllm:time_to_first_token_seconds"),
    queue_length=Selector(metric="vllm:num_requests_waiting"),
    running_requests=Selector(metric="vllm:num_requests_running"),
    kv_cache_usage=Selector(metric="vllm:kv_cache_usage_perc", aggregate="max"),
)

TRITON = Mapping(
    # One success or failure per request, even when the request was batched (Triton metrics.md).
    success=Selector(metric="nv_inference_request_success"),
    errors=Selector(metric="nv_inference_request_failure"),
    latency_summary=Selector(metric="nv_inference_request_summary_us", aggregate="max"),
    latency_sum=Selector(metric="nv_inference_request_duration_us"),
    latency_count=Selector(metric="nv_inference_request_success"),
    latency_unit_seconds=1e-6,
    queue_length=Selector(metric="nv_inference_pending_request_count"),
    # Average dynamic batch size = rate(nv_inference_count) / rate(nv_inference_exec_count).
    batch_items=Selector(metric="nv_inference_count"),
    batch_executions=Selector(metric="nv_inference_exec_count"),
)

SGLANG = Mapping(
    requests=Selector(metric="sglang:num_requests_total"),
    # SGLang has no failure counter; aborted requests (errors, timeouts, disconnects) are the nearest.
    errors=Selector(metric="sglang:num_aborted_requests_total"),
    latency_histogram=Selector(metric="sglang:e2e_request_latency_seconds"),
    ttft_histogram=Selector(metric="sglang:time_to_first_token_seconds"),
    queue_length=Selector(metric="sglang:num_queue_reqs"),
    running_requests=Selector(metric="sglang:num_running_reqs"),
    kv_cache_usage=Selector(metric="sglang:token_usage", aggregate="max"),
)

PROFILES: dict[ProfileName, Mapping] = {
    "vllm": VLLM,
    "triton": TRITON,
    "sglang": SGLANG,
    "generic": Mapping(),
}

DEFAULT_URLS: dict[ProfileName, str] = {
    "vllm": "http://127.0.0.1:8000/metrics",
    "triton": "http://127.0.0.1:8002/metrics",
    "sglang": "http://127.0.0.1:30000/metrics",
}


def resolve(profile: ProfileName, overrides: Mapping) -> Mapping:
    """The profile's mapping with the fields the config set explicitly replaced."""
    # Not model_dump(): that would turn the nested selectors into plain dicts.
    return PROFILES[profile].model_copy(
        update={name: getattr(overrides, name) for name in overrides.model_fields_set}
    )
