"""From one parsed scrape to an `Observation`, and from a window of them to the business figures."""

from __future__ import annotations

import math
from dataclasses import dataclass

from gpuwarden.collectors.inference.exposition import Exposition
from gpuwarden.collectors.inference.settings import Mapping
from gpuwarden.collectors.inference.window import (
    Observation,
    Window,
    bucket_increase,
    histogram_quantile,
)

QUANTILES = (0.5, 0.9, 0.99)
COUNTERS = (
    "requests",
    "success",
    "errors",
    "latency_sum",
    "latency_count",
    "batch_items",
    "batch_executions",
)
GAUGES = ("queue_length", "running_requests", "kv_cache_usage", "memory_reserved", "memory_allocated")


def observe(exp: Exposition, mapping: Mapping, t: float) -> Observation:
    obs = Observation(t)
    for signal in COUNTERS:
        sel = getattr(mapping, signal)
        # A metric this server version does not export at all is absent (no rate, no ratio), not 0; a
        # metric with no matching series yet (no 5xx so far) is 0.
        if sel is not None and exp.has(sel):
            obs.counters[signal] = exp.select(sel)
    if mapping.latency_histogram is not None and exp.has(mapping.latency_histogram, "_count"):
        hist = mapping.latency_histogram
        obs.counters["latency_bucket"] = exp.select(hist, "_bucket")
        # The histogram's own _sum/_count give the mean, in place of latency_sum/latency_count.
        obs.counters["latency_sum"] = exp.select(hist, "_sum")
        obs.counters["latency_count"] = exp.select(hist, "_count")
    if mapping.ttft_histogram is not None:
        obs.counters["ttft_bucket"] = exp.select(mapping.ttft_histogram, "_bucket")
    for signal in GAUGES:
        sel = getattr(mapping, signal)
        if sel is not None and (value := exp.gauge(sel)) is not None:
            obs.gauges[signal] = value
    if mapping.latency_summary is not None:
        # A summary's quantiles are the server's own sliding window; combining series can only bound
        # them, so take the worst (the Triton guide's `max by (model)`).
        for key, value in exp.select(mapping.latency_summary).items():
            q = dict(key).get("quantile")
            if q is not None:
                quantile = float(q)
                seconds = value * mapping.latency_unit_seconds
                obs.quantiles[quantile] = max(seconds, obs.quantiles.get(quantile, -math.inf))
    return obs


@dataclass(frozen=True)
class Figures:
    """What the window says; None where the server does not export the input or there is no traffic."""

    window_seconds: float
    requests: float | None = None  # requests in the window
    qps: float | None = None
    error_ratio: float | None = None
    latency_mean: float | None = None
    latency_quantiles: dict[float, float] | None = None
    ttft_quantiles: dict[float, float] | None = None
    batch_size: float | None = None
    queue_length: float | None = None
    running_requests: float | None = None
    kv_cache_usage: float | None = None
    memory_fragmentation: float | None = None


def _ratio(num: float | None, den: float | None) -> float | None:
    return num / den if num is not None and den else None


def derive(window: Window, mapping: Mapping) -> Figures:
    latest = window.latest
    if latest is None:
        return Figures(window_seconds=0.0)
    duration = window.duration
    requests = window.total_increase("requests")
    errors = window.total_increase("errors")
    if requests is None:
        success = window.total_increase("success")
        requests = None if success is None else success + (errors or 0.0)
    if requests is None:
        # No request counter in this version (SGLang before num_requests_total): every finished request
        # is one observation of the latency histogram, so its _count is the request count.
        requests = window.total_increase("latency_count")
    gauges = latest.gauges
    reserved, allocated = gauges.get("memory_reserved"), gauges.get("memory_allocated")
    fragmentation = None
    if reserved and allocated is not None:
        # Memory the allocator holds but no tensor uses (PyTorch's reserved − allocated): the caching
        # allocator cannot always hand it to a large request, which then fails with "out of memory".
        fragmentation = min(max(1.0 - allocated / reserved, 0.0), 1.0)
    batch_size = _ratio(window.total_increase("batch_items"), window.total_increase("batch_executions"))
    if batch_size is None and mapping.batch_items is None:
        batch_size = gauges.get("running_requests")  # continuous batching: the running set is the batch
    return Figures(
        window_seconds=duration,
        requests=requests,
        qps=_ratio(requests, duration),
        error_ratio=_ratio(errors, requests),
        latency_mean=_mean_latency(window, mapping),
        latency_quantiles=_histogram_quantiles(window, "latency_bucket", mapping.latency_unit_seconds)
        or _summary_quantiles(latest),
        ttft_quantiles=_histogram_quantiles(window, "ttft_bucket", 1.0),
        batch_size=batch_size,
        queue_length=gauges.get("queue_length"),
        running_requests=gauges.get("running_requests"),
        kv_cache_usage=gauges.get("kv_cache_usage"),
        memory_fragmentation=fragmentation,
    )


def _mean_latency(window: Window, mapping: Mapping) -> float | None:
    mean = _ratio(window.total_increase("latency_sum"), window.total_increase("latency_count"))
    if mean is None:
        return None
    return mean * mapping.latency_unit_seconds


def _histogram_quantiles(window: Window, signal: str, scale: float) -> dict[float, float] | None:
    inc = window.increase(signal)
    if not inc:
        return None
    buckets = bucket_increase(inc)
    # Interpolation is linear, so scaling the answer equals scaling the bucket bounds.
    values = {q: histogram_quantile(q, buckets) * scale for q in QUANTILES}
    return {q: v for q, v in values.items() if not math.isnan(v)} or None


def _summary_quantiles(latest: Observation) -> dict[float, float] | None:
    return {q: v for q, v in latest.quantiles.items() if q in QUANTILES} or None
