"""A broken or hostile inference target fails the scrape with its reason; it never reads as healthy."""

from __future__ import annotations

import logging
import resource
import time
from collections.abc import Iterator
from typing import Any

import pytest

from gpuwarden.agent.registry import CollectorContext
from gpuwarden.collectors.inference import InferenceCollector
from gpuwarden.collectors.inference.settings import InferenceSettings
from gpuwarden.config import AgentConfig
from gpuwarden.health import HealthResult, State
from tests.golden import split
from tests.hostile_target import HostileTarget


@pytest.fixture(scope="module")
def target() -> Iterator[HostileTarget]:
    t = HostileTarget()
    yield t
    t.close()


def scrape(url: str, **settings: Any) -> tuple[dict[str, float], HealthResult]:
    s = InferenceSettings.model_validate({"enabled": True, "url": url, **settings})
    ctx = CollectorContext(paths=AgentConfig().paths.paths(), log=logging.getLogger("t"))
    metrics, health = split(InferenceCollector(s, ctx).collect())
    values = {sample.name: sample.value for family in metrics for sample in family.samples}
    (result,) = [h for h in health if h.component == "inference.target"]
    return values, result


def test_the_good_page_of_the_same_server_is_healthy(target: HostileTarget) -> None:
    values, result = scrape(target.url("good"))
    assert values["gpuwarden_inference_up"] == 1 and result.state == State.HEALTHY


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("endless", f"body larger than {8 << 20} bytes (max_body_bytes)"),
        ("gzip-bomb", f"body larger than {8 << 20} bytes (max_body_bytes)"),
        ("big", f"body larger than {8 << 20} bytes (max_body_bytes)"),
        ("many-series", "holds 100000 series of the mapped metrics, more than max_series (20000)"),
        ("trickle", "no complete answer within 2s (scrape_timeout)"),
        ("slow-headers", "no complete answer within 2s (scrape_timeout)"),
        ("html", "answered text/html, not the Prometheus text format"),
        ("garbage", "exposes none of the mapped metrics"),
        ("redirect-other", "redirected to another host"),
        ("cut-gzip", "ends before its compressed stream does"),
    ],
)
def test_a_hostile_answer_fails_the_scrape_with_its_reason(
    target: HostileTarget, path: str, reason: str
) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    values, result = scrape(target.url(path), scrape_timeout=2.0)
    elapsed = time.monotonic() - start
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert values["gpuwarden_inference_up"] == 0
    assert "gpuwarden_inference_requests_per_second" not in values
    assert result.state == State.UNKNOWN and reason in result.reason, result.reason
    # Bounds, not timings: the deadline is 2 s (an unbounded read takes forever) and the body cap 8 MB
    # (unbounded: the 50 MB page or the endless streams whole).
    assert elapsed < 10 and grown_mb < 60, f"{elapsed:.1f}s, peak RSS +{grown_mb:.0f} MB"


def test_a_page_without_the_profile_metrics_is_not_a_healthy_scrape(target: HostileTarget) -> None:
    # A triton profile pointed at a vLLM server: a valid exposition, but none of the series it needs.
    values, result = scrape(target.url("good"), profile="triton")
    assert values["gpuwarden_inference_up"] == 0 and result.state == State.UNKNOWN
    assert "exposes none of the mapped metrics (nv_inference_count, nv_inference_exec_count" in result.reason


def test_a_redirect_to_another_host_is_followed_when_configured(target: HostileTarget) -> None:
    values, result = scrape(target.url("redirect-other"), follow_redirects_to_other_hosts=True)
    assert values["gpuwarden_inference_up"] == 1 and result.state == State.HEALTHY


def test_the_caps_are_settings(target: HostileTarget) -> None:
    values, result = scrape(target.url("many-series"), max_series=200_000, max_body_bytes=1 << 20)
    assert result.state == State.UNKNOWN and f"larger than {1 << 20} bytes" in result.reason
    values, result = scrape(target.url("many-series"), max_series=200_000)
    assert values["gpuwarden_inference_up"] == 1 and result.state == State.HEALTHY
