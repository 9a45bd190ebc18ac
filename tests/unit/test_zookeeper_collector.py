"""The zookeeper collector's exposition and health (from recorded replies), its settings, and the probe's
socket handling against real loopback sockets."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from prometheus_client.core import Metric

from gpuwarden import config as configmod
from gpuwarden.agent.context import collector_context
from gpuwarden.agent.registry import CollectorContext
from gpuwarden.catalog import catalog_names
from gpuwarden.collectors.zookeeper import collector as zk
from gpuwarden.collectors.zookeeper.parse import Mode, Reply, ServerStatus, classify
from gpuwarden.collectors.zookeeper.probe import four_letter, probe_server
from gpuwarden.collectors.zookeeper.verdict import judge
from gpuwarden.config import AgentConfig
from gpuwarden.health import Action, HealthResult, State
from tests.fixtures.zookeeper.support import FIXTURES, recorded
from tests.golden import assert_golden, exposition, split

A, B, C, OBS = "10.0.0.1:2181", "10.0.0.2:2181", "10.0.0.3:2181", "10.0.0.9:2181"


CASES = {
    "all_up": {A: "all_up/leader", B: "all_up/follower", C: "all_up/follower"},
    "leader_killed": {A: None, B: "leader_killed/leader", C: "leader_killed/follower", OBS: None},
    "two_killed": {A: None, B: "two_killed/read_only", C: None, OBS: None},
    "whitelist_srvr_only": {
        A: "whitelist_srvr_only/leader",
        B: "whitelist_srvr_only/server",
        C: "whitelist_srvr_only/server",
    },
}
REFUSED = "is not executed because it is not in the whitelist."


def items(case: str) -> tuple[list[Metric], list[HealthResult]]:
    if case == "whitelist_blocked":  # srvr refused too: nothing can decide
        r = {c: Reply(f"{c} {REFUSED}") for c in ("ruok", "srvr", "mntr", "isro")}
        status = {a: classify(a, r["ruok"], r["srvr"], r["mntr"], r["isro"]) for a in (A, B, C)}
    else:
        status = {
            a: recorded(c, a) if c else ServerStatus(a, Mode.UNREACHABLE, detail="ruok: Connection refused")
            for a, c in CASES[case].items()
        }
    # probe_seconds is wall time; pin it so the golden file is stable
    status = {a: replace(s, probe_seconds=0.004) for a, s in status.items()}
    observers = [OBS] if OBS in status else []
    return split(zk.export("prod", judge([A, B, C], observers, status), status))


@pytest.mark.parametrize("case", sorted(CASES))
def test_recorded_ensemble_states_give_the_expected_exposition(case: str) -> None:
    metrics, _ = items(case)
    assert_golden(exposition(metrics), FIXTURES / f"{case}.prom")


def test_a_healthy_ensemble_emits_exactly_the_catalog() -> None:
    metrics, _ = items("all_up")
    assert {m.name for m in metrics} == catalog_names(zk.CATALOG)


@pytest.mark.parametrize(
    ("case", "state", "words"),
    [
        ("all_up", State.HEALTHY, "OK"),
        ("leader_killed", State.DEGRADED, "2 of 3 voters in sync"),
        ("two_killed", State.UNHEALTHY, "NO_QUORUM"),
        ("whitelist_srvr_only", State.HEALTHY, "from srvr"),
        ("whitelist_blocked", State.UNKNOWN, "4lw.commands.whitelist"),
    ],
)
def test_the_verdict_and_its_reasons_go_to_health(case: str, state: State, words: str) -> None:
    _, health = items(case)
    assert health[0].component == "zookeeper.quorum" and dict(health[0].labels) == {"ensemble": "prod"}
    assert health[0].state is state and words in health[0].reason
    servers = health[1:]
    assert all(h.component == f"zookeeper.server.{h.labels['server']}" for h in servers) and len(servers) >= 3


def test_an_unknown_verdict_exports_no_quorum_ok_rather_than_a_zero() -> None:
    metrics, _ = items("whitelist_blocked")
    names = {m.name for m in metrics}
    assert "gpuwarden_zookeeper_quorum_ok" not in names
    assert "gpuwarden_zookeeper_tolerable_failures" not in names


def ctx(cfg: AgentConfig) -> CollectorContext:
    return collector_context(cfg, logging.getLogger("test"))


def test_without_servers_the_collector_checks_the_fleet_ensemble() -> None:
    cfg = configmod.from_mapping({"fleet": {"hosts": ["zk1:2181", "zk2:2181", "zk3:2181"]}})
    collector = zk.ZookeeperCollector(zk.ZookeeperSettings(enabled=True), ctx(cfg))
    assert collector.voters == ["zk1:2181", "zk2:2181", "zk3:2181"]


def test_with_no_ensemble_anywhere_the_collector_refuses_to_start_and_says_which_keys() -> None:
    with pytest.raises(ValueError, match=r"collectors\.zookeeper\.servers.*fleet\.hosts"):
        zk.ZookeeperCollector(zk.ZookeeperSettings(enabled=True), ctx(AgentConfig()))


def test_bad_server_addresses_are_config_errors_naming_the_key_path() -> None:
    with pytest.raises(configmod.ConfigError) as err:
        configmod.from_mapping({"collectors": {"zookeeper": {"servers": ["zk1:2181", "zk2:http"]}}})
    assert err.value.problems == [
        "collectors.zookeeper.servers[1]: 'zk2:http': port must be a number from 1 to 65535"
    ]


def serve_once(reply: bytes, chunk: int, close: bool) -> Iterator[str]:
    """A loopback server that answers one connection with `reply` in `chunk`-byte writes."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        conn, _ = listener.accept()
        conn.recv(16)
        for i in range(0, len(reply), chunk):
            conn.sendall(reply[i : i + chunk])
            time.sleep(0.001)
        if close:
            conn.close()
        else:
            time.sleep(2)
            conn.close()

    threading.Thread(target=answer, daemon=True).start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def test_the_probe_reads_a_reply_split_over_many_segments_to_eof() -> None:
    text = (FIXTURES / "all_up/leader.mntr").read_bytes()
    for address in serve_once(text, 1000, close=True):
        assert four_letter(address, "mntr", 2.0).text == text.decode()


def test_a_server_that_never_closes_the_connection_is_a_timeout_not_a_hang() -> None:
    for address in serve_once(b"zk_version\t3.8.0\n", 100, close=False):
        started = time.monotonic()
        reply = four_letter(address, "mntr", 0.3)
        assert reply.error is Mode.TIMEOUT
        assert time.monotonic() - started < 1.5


def test_a_closed_port_is_unreachable_and_the_probe_stops_there() -> None:
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    status = probe_server(f"127.0.0.1:{port}", 0.5)
    assert status.mode is Mode.UNREACHABLE and "refused" in status.detail.lower()


def test_each_server_has_its_own_result_and_a_dead_one_is_degraded() -> None:
    _, health = items("leader_killed")
    servers = {h.labels["server"]: h for h in health if h.component.startswith("zookeeper.server.")}
    assert {a: h.state for a, h in servers.items()} == {
        A: State.DEGRADED,  # the old leader and the observer are gone
        B: State.HEALTHY,
        C: State.HEALTHY,
        OBS: State.DEGRADED,
    }
    assert servers[A].suggested_action is Action.CHECK_NETWORK
    assert servers[A].reason == f"{A}: unreachable (ruok: Connection refused)"
