"""Every series the inference collector exports (docs, dashboards and alert rules read this list)."""

from __future__ import annotations

from gpuwarden.catalog import MetricSpec

CATALOG = (
    MetricSpec(
        "gpuwarden_inference_up", "gauge", "1 if the last scrape of the inference server's metrics succeeded."
    ),
    MetricSpec(
        "gpuwarden_inference_scrape_duration_seconds",
        "gauge",
        "Time the last scrape and parse of the inference server's metrics took.",
        unit="seconds",
    ),
    MetricSpec(
        "gpuwarden_inference_server_restarts_total",
        "counter",
        "Inference server restarts seen by the agent: scrapes at which its request counters went down.",
    ),
    MetricSpec(
        "gpuwarden_inference_window_seconds",
        "gauge",
        "Time between the oldest and the newest scrape in the sliding window the figures cover.",
        unit="seconds",
    ),
    MetricSpec(
        "gpuwarden_inference_requests_per_second",
        "gauge",
        "Inference requests per second over the window, failed ones included.",
    ),
    MetricSpec(
        "gpuwarden_inference_error_ratio",
        "gauge",
        "Share of the window's inference requests that failed (absent when there were none).",
        unit="ratio",
    ),
    MetricSpec(
        "gpuwarden_inference_latency_seconds",
        "summary",
        "End-to-end request latency quantile over the window (histogram interpolation) or from the "
        "server's summary.",
        labels=("quantile",),
        unit="seconds",
    ),
    MetricSpec(
        "gpuwarden_inference_time_to_first_token_seconds",
        "summary",
        "Time-to-first-token quantile over the window, for streaming LLM servers (histogram interpolation).",
        labels=("quantile",),
        unit="seconds",
    ),
    MetricSpec(
        "gpuwarden_inference_latency_mean_seconds",
        "gauge",
        "Mean end-to-end request latency over the window.",
        unit="seconds",
    ),
    MetricSpec("gpuwarden_inference_queue_length", "gauge", "Requests waiting to be scheduled."),
    MetricSpec(
        "gpuwarden_inference_running_requests", "gauge", "Requests being executed (the continuous batch)."
    ),
    MetricSpec(
        "gpuwarden_inference_batch_size",
        "gauge",
        "Mean batch size: inferences per batch execution over the window, or the running requests of a "
        "continuously batching server.",
    ),
    MetricSpec("gpuwarden_inference_kv_cache_usage_ratio", "gauge", "KV-cache usage, 0 to 1.", unit="ratio"),
    MetricSpec(
        "gpuwarden_inference_memory_fragmentation_ratio",
        "gauge",
        "Share of the GPU memory the engine's allocator holds that no tensor uses (1 - allocated/reserved).",
        unit="ratio",
    ),
)
