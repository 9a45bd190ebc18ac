"""The agent's routes on the HTTP layer: /health's fail_status, /metrics, the HTTP series, added routes."""

from __future__ import annotations

import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gpuwarden.agent.daemon import Agent
from gpuwarden.agent.health_store import HealthStore
from gpuwarden.agent.http import CATALOG, Headers, Request, Response, Route, Router, Stats
from gpuwarden.agent.runner import Runner
from gpuwarden.config import AgentConfig
from gpuwarden.health import HealthResult, State


def call(router: Router, target: str, headers: dict[str, str] | None = None) -> Response:
    path, _, query = target.partition("?")
    route, params = router.resolve("GET", path)
    args = dict(pair.split("=", 1) for pair in query.split("&")) if query else {}
    return route.handler(
        Request("GET", path, args, Headers(headers), b"", "test", params, route.path_pattern)
    )


@pytest.fixture
def agent() -> Agent:
    return Agent(AgentConfig(), None, None)


@pytest.mark.parametrize(
    ("state", "plain", "failing"),
    [
        (State.HEALTHY, 200, 200),
        (State.DEGRADED, 200, 200),
        (State.UNKNOWN, 200, 200),
        (State.UNHEALTHY, 200, 503),
    ],
)
def test_fail_status_applies_only_while_the_node_is_unhealthy(
    agent: Agent, state: State, plain: int, failing: int
) -> None:
    agent.health.replace("gpu", [HealthResult("gpu.0.xid", state, "recorded")])
    assert call(agent.router, "/health").status == plain
    assert call(agent.router, "/health?fail_status=503").status == failing


@pytest.mark.parametrize("value", ["", "abc", "200", "600", "5O3", "\u0665\u0660\u0663"])
def test_a_fail_status_that_is_not_an_error_code_is_a_400(agent: Agent, value: str) -> None:
    response = call(agent.router, f"/health?fail_status={value}")
    assert response.status == 400 and b"fail_status must be an HTTP status from 400 to 599" in response.body


def test_metrics_are_the_runner_bytes_plain_or_gzip_and_carry_the_http_series(agent: Agent) -> None:
    agent.http_stats.count("reset")
    agent.runner.render()
    plain = call(agent.router, "/metrics")
    gz = call(agent.router, "/metrics", {"Accept-Encoding": "gzip, deflate"})
    assert plain.body == agent.runner.exposition.plain and gz.headers == {"Content-Encoding": "gzip"}
    families = {f.name: f for f in text_string_to_metric_families(plain.body.decode())}
    errors = families["gpuwarden_http_client_errors"]
    assert {s.labels["reason"]: s.value for s in errors.samples if s.name.endswith("_total")}["reset"] == 1


def test_the_http_series_are_exactly_the_catalog() -> None:
    runner = Runner(HealthStore(), logging.getLogger("test"))
    runner.add_source(Stats())
    runner.render()
    text = runner.exposition.plain.decode()
    emitted = {f.name for f in text_string_to_metric_families(text) if f.name.startswith("gpuwarden_http")}
    assert emitted == {spec.name.removesuffix("_total") for spec in CATALOG}


def test_routes_added_to_the_agent_are_served_beside_its_own(agent: Agent) -> None:
    agent.add_route(Route("GET", "/v1/remediations", lambda r: Response(200, b"[]")))
    assert call(agent.router, "/v1/remediations").body == b"[]"
    assert call(agent.router, "/healthz").status == 503  # not running: the scheduler has not started
    with pytest.raises(ValueError, match="already defined"):
        agent.add_route(Route("GET", "/metrics", lambda r: Response(200)))
