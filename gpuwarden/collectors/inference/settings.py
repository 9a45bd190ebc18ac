"""Settings of the inference collector: which endpoint to scrape and how its series map to our signals.

A *profile* (vllm, triton, sglang, tgi) is a ready-made `Mapping`; `mapping:` in the config overrides single
fields of it, and the `generic` profile starts from an empty mapping so that any server exposing
Prometheus text can be described in YAML alone.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from gpuwarden.agent.registry import CollectorSettings
from gpuwarden.config_base import StrictModel

ProfileName = Literal["vllm", "triton", "sglang", "tgi", "generic"]


class Selector(StrictModel):
    """One metric of the scraped server, like a PromQL selector: a name and label regexes."""

    metric: str | list[str] = Field(
        description="metric name as exposed (a counter's `_total` suffix is optional; a histogram or "
        "summary is named by its base name), or a list of names tried in order, for servers that renamed "
        "a metric between versions: the first the scrape has is used"
    )
    match: dict[str, str] = Field(
        default_factory=dict,
        description="label name → regular expression the label value must match fully (PromQL `=~`)",
    )

    @property
    def names(self) -> list[str]:
        return [self.metric] if isinstance(self.metric, str) else list(self.metric)

    @field_validator("metric")
    @classmethod
    def _some_name(cls, value: str | list[str]) -> str | list[str]:
        if not value or (isinstance(value, list) and not all(value)):
            raise ValueError("name the metric (or a non-empty list of names)")
        return value

    aggregate: Literal["sum", "max"] = Field(
        "sum", description="how several matching gauge series combine into one value"
    )

    @field_validator("match")
    @classmethod
    def _regexes(cls, value: dict[str, str]) -> dict[str, str]:
        for label, pattern in value.items():
            try:
                re.compile(pattern)
            except re.error as err:
                raise ValueError(f"label {label}: invalid regular expression: {err}") from None
        return value


class Mapping(StrictModel):
    """Where each business signal comes from. Unset signals are simply not exported."""

    requests: Selector | None = Field(
        None, description="counter of every inference request, failed ones included"
    )
    success: Selector | None = Field(
        None, description="counter of successful requests; with no `requests`, total = success + errors"
    )
    errors: Selector | None = Field(None, description="counter of failed requests")
    latency_histogram: Selector | None = Field(
        None, description="end-to-end latency histogram (quantiles and mean come from its buckets)"
    )
    ttft_histogram: Selector | None = Field(
        None, description="time-to-first-token histogram in seconds (streaming LLM servers)"
    )
    latency_summary: Selector | None = Field(
        None, description="latency summary with a `quantile` label (used when there is no histogram)"
    )
    latency_sum: Selector | None = Field(
        None, description="counter of cumulative latency (mean latency when there is no histogram)"
    )
    latency_count: Selector | None = Field(None, description="counter of requests that `latency_sum` covers")
    latency_unit_seconds: float = Field(
        1.0, gt=0, description="seconds per unit of the latency series (Triton's `_us` series: 1e-6)"
    )
    queue_length: Selector | None = Field(None, description="gauge of requests waiting to be scheduled")
    running_requests: Selector | None = Field(
        None, description="gauge of requests being executed (the continuous batch)"
    )
    batch_items: Selector | None = Field(
        None, description="counter of inferences; batch size = rate(batch_items) / rate(batch_executions)"
    )
    batch_executions: Selector | None = Field(None, description="counter of batch executions")
    kv_cache_usage: Selector | None = Field(None, description="gauge of KV-cache usage, 0 to 1")
    memory_reserved: Selector | None = Field(
        None, description="gauge of GPU memory the allocator holds, in bytes (for fragmentation)"
    )
    memory_allocated: Selector | None = Field(
        None, description="gauge of GPU memory handed out to tensors, in bytes (for fragmentation)"
    )


class InferenceSettings(CollectorSettings):
    # Field validators rather than one model validator, so that errors name the exact key path
    # (collectors.inference.url) and can read the fields declared before them (profile, interval).
    # Off by default: a node without an inference server (or with one on another port) would otherwise
    # report an unreachable target.
    enabled: bool = Field(False, description="scrape the inference server (needs it running on `url`)")
    profile: ProfileName = Field(
        "vllm", description="metric names of the server: vllm, triton, sglang, tgi, generic"
    )
    url: str | None = Field(
        None,
        validate_default=True,
        description="the inference server's Prometheus endpoint; default: the profile's usual port on "
        "localhost (vllm :8000, triton :8002, sglang :30000, tgi :3000)",
    )
    mapping: Mapping = Field(
        default_factory=Mapping,
        validate_default=True,
        description="overrides of the profile's mapping (all of it for generic)",
    )
    window: float = Field(
        60.0,
        gt=0,
        validate_default=True,
        description="sliding window in seconds over which rates, ratios and quantiles are taken",
    )
    scrape_timeout: float = Field(
        5.0, gt=0, description="seconds one scrape may take in all: connect, headers and the whole body"
    )
    # vLLM's page is about 100 KB and a Triton serving a hundred models a few MB; a page past the cap is
    # not a metrics page (or is an attack), and reading it would grow the agent by its size.
    max_body_bytes: int = Field(
        8 << 20, ge=1024, description="largest scrape body accepted, after decompression (bytes)"
    )
    max_series: int = Field(
        20_000,
        ge=1,
        description="most series of the mapped metrics one scrape may hold; more fails the scrape (the "
        "window keeps every scrape's series)",
    )
    follow_redirects_to_other_hosts: bool = Field(
        False, description="follow a redirect of `url` to another scheme, host or port (same host: always)"
    )
    # 5 % of requests failing is past most inference SLOs (99.9 % or 99 % availability) by far; a lower
    # threshold pages on noise from client disconnects.
    error_ratio_threshold: float = Field(
        0.05, ge=0, le=1, description="error ratio over the window above which health is DEGRADED"
    )
    min_requests: int = Field(
        10, ge=1, description="requests the window must hold before the error ratio is judged"
    )
    latency_p99_max_seconds: float | None = Field(
        None, gt=0, description="p99 latency above which health is DEGRADED; unset: not judged"
    )
    unhealthy_after_failures: int = Field(
        3, ge=1, description="consecutive failed scrapes after which health goes from UNKNOWN to UNHEALTHY"
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("profile") == "generic":
            raise ValueError("the generic profile needs the server's metrics URL")
        if value is not None and not re.match(r"^https?://[^/]", value):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("mapping")
    @classmethod
    def _mapping(cls, value: Mapping, info: ValidationInfo) -> Mapping:
        if info.data.get("profile") == "generic" and value.requests is None and value.success is None:
            raise ValueError("the generic profile needs mapping.requests or mapping.success")
        return value

    @field_validator("scrape_timeout")
    @classmethod
    def _scrape_timeout(cls, value: float, info: ValidationInfo) -> float:
        timeout = info.data.get("timeout")
        # The runner abandons a collection at `timeout`; the scrape must give up first, with its reason.
        if timeout is not None and value >= timeout:
            raise ValueError(f"must be less than the collector timeout ({timeout:g}s)")
        return value

    @field_validator("window")
    @classmethod
    def _window(cls, value: float, info: ValidationInfo) -> float:
        interval = info.data.get("interval")
        # Rates need two scrapes inside the window.
        if interval is not None and value < 2 * interval:
            raise ValueError(f"must be at least twice the interval ({2 * interval:g}s) to hold two scrapes")
        return value
