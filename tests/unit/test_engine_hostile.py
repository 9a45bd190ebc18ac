"""The engine's HTTP probe against a broken or hostile endpoint: a failed probe with its reason, bounded."""

from __future__ import annotations

import resource
from collections.abc import Iterator

import pytest

from gpuwarden.collectors.engine.http_backend import HttpBackend
from gpuwarden.collectors.engine.probe import ProbeFailure
from gpuwarden.collectors.engine.settings import HttpProbeSettings
from tests.hostile_target import HostileTarget


@pytest.fixture(scope="module")
def target() -> Iterator[HostileTarget]:
    t = HostileTarget()
    yield t
    t.close()


@pytest.mark.parametrize(
    ("path", "kind", "detail"),
    [
        ("endless", "bad_response", f"body larger than {1 << 20} bytes (http.max_body_bytes)"),
        ("gzip-bomb", "bad_response", f"body larger than {1 << 20} bytes (http.max_body_bytes)"),
        ("big", "bad_response", f"body larger than {1 << 20} bytes (http.max_body_bytes)"),
        ("trickle", "timeout", "gave no answer within 1 s"),
        ("slow-headers", "timeout", "gave no answer within 1 s"),
        ("redirect-other", "bad_response", "redirected to another host"),
        ("html", "bad_response", "not an OpenAI model list"),
    ],
)
def test_a_hostile_endpoint_fails_the_probe_with_its_reason(
    target: HostileTarget, path: str, kind: str, detail: str
) -> None:
    settings = HttpProbeSettings(url=target.url(path), protocol="openai", model="m")
    backend = HttpBackend(settings, timeout=1.0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ProbeFailure) as info:
        backend.run(None)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert (info.value.reason, detail in info.value.detail) == (kind, True), info.value.detail
    assert grown_mb < 20, f"peak RSS +{grown_mb:.0f} MB"
