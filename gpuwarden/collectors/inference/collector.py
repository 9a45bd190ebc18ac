"""The inference collector: what users of the inference server experience, from the server's own metrics.

Every interval it scrapes the server's Prometheus endpoint, maps the profile's series to signals, keeps
the scrapes of the last `window` seconds and derives QPS, error ratio, latency quantiles and mean, queue
length, batch size, KV-cache usage and allocator fragmentation. Figures are only exported from a
successful scrape: after a failed one they would describe a server that may no longer exist.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from gpuwarden.agent.registry import CollectionFailed, CollectorContext, Item, register
from gpuwarden.catalog import Families
from gpuwarden.collectors.inference.catalog import CATALOG
from gpuwarden.collectors.inference.exposition import (
    Exposition,
    ScrapeError,
    fetch,
    require_any,
    sample_lines,
    wanted_names,
)
from gpuwarden.collectors.inference.profiles import DEFAULT_URLS, resolve
from gpuwarden.collectors.inference.settings import InferenceSettings, Mapping, Selector
from gpuwarden.collectors.inference.signals import Figures, derive, observe
from gpuwarden.collectors.inference.window import Window
from gpuwarden.health import Action, HealthResult, State
from gpuwarden.httpread import Limits

_REQUEST_SIGNALS = ("requests", "success", "errors")


@register("inference", InferenceSettings)
class InferenceCollector:
    def __init__(
        self,
        settings: InferenceSettings,
        ctx: CollectorContext,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.url = settings.url or DEFAULT_URLS[settings.profile]  # generic always has a url (validated)
        self.mapping: Mapping = resolve(settings.profile, settings.mapping)
        selectors = [getattr(self.mapping, name) for name in Mapping.model_fields]
        self._names = wanted_names(s for s in selectors if isinstance(s, Selector))
        self._clock = clock
        self._limits = Limits(
            settings.scrape_timeout,
            settings.max_body_bytes,
            settings.follow_redirects_to_other_hosts,
            deadline_key="scrape_timeout",
        )
        self._window = Window(settings.window)
        self._failures = 0
        self._resets = 0

    def close(self) -> None:
        pass  # every scrape opens and closes its own connection

    def collect(self) -> Iterator[Item]:
        fams = Families(CATALOG)
        start = self._clock()
        try:
            text = fetch(self.url, self._limits)
            require_any(text, self._names, self.url)
            # Counted before parsing (one cheap pass more): a parsed series costs ~15 times its line.
            series = len(sample_lines(text, self._names)[0])
            if series > self.settings.max_series:
                raise ScrapeError(
                    f"{self.url} holds {series} series of the mapped metrics, more than max_series "
                    f"({self.settings.max_series})"
                )
            exp = Exposition.parse(text, self._names)
        except ScrapeError as err:
            self._failures += 1
            fams.add("gpuwarden_inference_up", 0)
            fams.add("gpuwarden_inference_scrape_duration_seconds", self._clock() - start)
            fams.add("gpuwarden_inference_server_restarts_total", self._resets)
            yield self._unreachable(str(err))
            yield from fams
            yield CollectionFailed(str(err))
            return
        self._failures = 0
        self._window.add(observe(exp, self.mapping, start))
        if any(self._window.last_resets(signal) for signal in _REQUEST_SIGNALS):
            self._resets += 1
        figures = derive(self._window, self.mapping)
        fams.add("gpuwarden_inference_up", 1)
        fams.add("gpuwarden_inference_scrape_duration_seconds", self._clock() - start)
        fams.add("gpuwarden_inference_server_restarts_total", self._resets)
        _export(fams, figures)
        yield HealthResult("inference.target", State.HEALTHY, f"scraped {self.url}")
        yield self._errors(figures)
        yield from self._latency(figures)
        yield from fams

    def _unreachable(self, reason: str) -> HealthResult:
        n, limit = self._failures, self.settings.unhealthy_after_failures
        if n >= limit:
            # The server's own endpoint has not answered for `limit` scrapes: the process is gone or hung.
            return HealthResult(
                "inference.target", State.UNHEALTHY, f"{reason} ({n} scrapes in a row)", Action.RESTART_WORKER
            )
        return HealthResult(
            "inference.target", State.UNKNOWN, f"{reason} ({n} of {limit})", Action.CHECK_WORKLOAD
        )

    def _errors(self, f: Figures) -> HealthResult:
        s = self.settings
        if len(self._window) < 2:
            return HealthResult("inference.errors", State.UNKNOWN, "one scrape so far; rates need two")
        if f.requests is None:
            return HealthResult("inference.errors", State.UNKNOWN, "the server exports no request counter")
        if f.requests < s.min_requests:
            return HealthResult(
                "inference.errors",
                State.HEALTHY,
                f"{f.requests:g} requests in {f.window_seconds:.0f}s, under {s.min_requests}: not judged",
            )
        ratio = f.error_ratio or 0.0
        text = f"error ratio {ratio:.2%} over {f.requests:g} requests in {f.window_seconds:.0f}s"
        if ratio > s.error_ratio_threshold:
            return HealthResult(
                "inference.errors",
                State.DEGRADED,
                f"{text} (threshold {s.error_ratio_threshold:.2%})",
                Action.CHECK_WORKLOAD,
            )
        return HealthResult("inference.errors", State.HEALTHY, text)

    def _latency(self, f: Figures) -> Iterator[HealthResult]:
        limit = self.settings.latency_p99_max_seconds
        if limit is None:
            return
        p99 = (f.latency_quantiles or {}).get(0.99)
        if p99 is None:
            yield HealthResult("inference.latency", State.HEALTHY, "no completed requests in the window")
        elif p99 > limit:
            yield HealthResult(
                "inference.latency",
                State.DEGRADED,
                f"p99 latency {p99:.3f}s above {limit:g}s",
                Action.CHECK_WORKLOAD,
            )
        else:
            yield HealthResult("inference.latency", State.HEALTHY, f"p99 latency {p99:.3f}s")


def _export(fams: Families, f: Figures) -> None:
    fams.add("gpuwarden_inference_window_seconds", f.window_seconds)
    for name, value in (
        ("gpuwarden_inference_requests_per_second", f.qps),
        ("gpuwarden_inference_error_ratio", f.error_ratio),
        ("gpuwarden_inference_latency_mean_seconds", f.latency_mean),
        ("gpuwarden_inference_queue_length", f.queue_length),
        ("gpuwarden_inference_running_requests", f.running_requests),
        ("gpuwarden_inference_batch_size", f.batch_size),
        ("gpuwarden_inference_kv_cache_usage_ratio", f.kv_cache_usage),
        ("gpuwarden_inference_memory_fragmentation_ratio", f.memory_fragmentation),
    ):
        if value is not None:
            fams.add(name, value)
    for q, value in sorted((f.latency_quantiles or {}).items()):
        fams.add("gpuwarden_inference_latency_seconds", value, quantile=f"{q:g}")
    for q, value in sorted((f.ttft_quantiles or {}).items()):
        fams.add("gpuwarden_inference_time_to_first_token_seconds", value, quantile=f"{q:g}")
