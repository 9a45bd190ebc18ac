"""The worker's Prometheus metrics, named as vLLM and prometheus-fastapi-instrumentator name them.

So the `inference` collector's vLLM profile reads the reference worker exactly as it reads a real vLLM
server: `vllm:*` series carry `model_name`; `http_requests_total{handler,method,status}` groups the status
as "2xx"/"4xx"/"5xx" and uses the route template as `handler`, as the instrumentator does in vLLM's API
server. Every request is counted, failures included.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

# `_created` series are noise for rate() consumers and vLLM deployments scrape without them.
disable_created_metrics()

# The contract's latency buckets, 1 ms .. 10 s: the canary model answers in well under a millisecond on
# a CPU, and the latency fault adds whole seconds, so both ends land in a finite bucket.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class WorkerMetrics:
    def __init__(self, model_name: str, memory_fraction: float) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ["model_name"]
        self.running = Gauge(
            "vllm:num_requests_running",
            "Number of requests currently running on the engine.",
            labels,
            registry=self.registry,
        ).labels(model_name)
        self.waiting = Gauge(
            "vllm:num_requests_waiting",
            "Number of requests waiting for an engine slot.",
            labels,
            registry=self.registry,
        ).labels(model_name)
        self.latency = Histogram(
            "vllm:e2e_request_latency_seconds",
            "End-to-end request latency in seconds, from arrival to response (successes and failures).",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        ).labels(model_name)
        self.success = Counter(
            "vllm:request_success",
            "Count of successfully processed requests.",
            labels,
            registry=self.registry,
        ).labels(model_name)
        self.http = Counter(
            "http_requests",
            "Total number of requests by handler, method and status class.",
            ["handler", "method", "status"],
            registry=self.registry,
        )
        # vLLM exports its cache config as an info-style gauge; gpu_memory_utilization is what
        # --memory-fraction sets, so dashboards and the memory-fraction playbook can read it back.
        Gauge(
            "vllm:cache_config_info",
            "Information of the LLMEngine CacheConfig.",
            ["gpu_memory_utilization"],
            registry=self.registry,
        ).labels(f"{memory_fraction:g}").set(1)

    def count_http(self, handler: str, method: str, code: int) -> None:
        self.http.labels(handler, method, f"{code // 100}xx").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
