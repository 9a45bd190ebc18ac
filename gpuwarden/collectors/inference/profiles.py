"""Built-in profiles: the metric names vLLM, Triton and SGLang document for their /metrics endpoints.

Sources: vLLM "Production Metrics" (docs.vllm.ai, V1 engine names) and its OpenAI server, which counts
HTTP requests with prometheus-fastapi-instrumentator (`http_requests_total{handler,method,status}`,
status grouped as 2xx/4xx/5xx); Triton's user guide `metrics.md` (per-model `nv_inference_*` counters in
microseconds, summaries with `--metrics-config summary_latencies=true`); SGLang's "Production Metrics"
(`--enable-metrics`); TGI's router (huggingface/text-generation-inference router/src: `tgi_request_*`
counters and histograms in seconds, written by the Rust `metrics` exporter without `_total`). None of them
exports allocator statistics, so fragmentation needs a `mapping`.

Versions: a selector lists every name a supported version exports, newest first.
- vLLM 0.4-0.10 (V0 and V1 engines) name the KV-cache gauge `vllm:gpu_cache_usage_perc`; V1 renamed it
  `vllm:kv_cache_usage_perc` (0.10+) and removed the old name (0.11). The other names are unchanged
  from 0.4 to 0.11.
- SGLang before `sglang:num_requests_total` existed (0.4.x) exports only the latency histogram: its
  `_count` gives QPS (signals.derive), and there is no error ratio where no failure counter exists.
- Triton counts a request once per model it reaches: an ensemble and each composing model count the same
  client request. Restrict `success` and `errors` to the top-level models with a `match` on `model`
  (docs/inference.md).
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
    kv_cache_usage=Selector(
        metric=["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"], aggregate="max"
    ),
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

TGI = Mapping(
    requests=Selector(metric="tgi_request_count"),
    # err label: validation, overloaded, dropped, generation... every one is a request the client lost.
    errors=Selector(metric="tgi_request_failure"),
    latency_histogram=Selector(metric="tgi_request_duration"),
    queue_length=Selector(metric="tgi_queue_size"),
    running_requests=Selector(metric="tgi_batch_current_size"),
)

PROFILES: dict[ProfileName, Mapping] = {
    "vllm": VLLM,
    "triton": TRITON,
    "sglang": SGLANG,
    "tgi": TGI,
    "generic": Mapping(),
}

DEFAULT_URLS: dict[ProfileName, str] = {
    "vllm": "http://127.0.0.1:8000/metrics",
    "triton": "http://127.0.0.1:8002/metrics",
    "sglang": "http://127.0.0.1:30000/metrics",
    "tgi": "http://127.0.0.1:3000/metrics",  # text-generation-launcher --port default
}


def resolve(profile: ProfileName, overrides: Mapping) -> Mapping:
    """The profile's mapping with the fields the config set explicitly replaced."""
    # Not model_dump(): that would turn the nested selectors into plain dicts.
    return PROFILES[profile].model_copy(
        update={name: getattr(overrides, name) for name in overrides.model_fields_set}
    )
