"""Peer probes against real sockets on 127.0.0.1: a listener, a closed port and a name that cannot resolve."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from gpuwarden.agent.registry import CollectorContext
from gpuwarden.collectors.network import NetworkCollector
from gpuwarden.collectors.network.peers import PeerStats, ProbeOutcome, probe_tcp
from gpuwarden.config import ConfigError, from_mapping
from gpuwarden.health import Action, HealthResult, State
from gpuwarden.paths import Paths
from tests.golden import split


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(128)
        yield server.getsockname()[1]


@pytest.fixture
def closed_port() -> Iterator[int]:
    # Bind without listen: the port is ours, so nothing else can take it, and a connect is refused.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    yield port
    sock.close()


def collector_for(peers: list[dict[str, Any]], tmp_path: Any, **settings: Any) -> NetworkCollector:
    cfg = from_mapping({"collectors": {"network": {"peers": peers, **settings}}})
    paths = Paths(procfs=str(tmp_path), sysfs=str(tmp_path))  # no interfaces: only the peers speak
    return NetworkCollector(
        cfg.collector_settings("network"), CollectorContext(paths, logging.getLogger("t"))
    )


def samples(metrics: list[Any], name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for m in metrics for s in m.samples if s.name == name}


def test_a_connect_to_a_listening_socket_measures_a_round_trip(listener: int) -> None:
    [outcome] = probe_tcp("127.0.0.1", listener, timeout=1.0)
    assert outcome.result == "ok"
    assert outcome.seconds is not None and 0 < outcome.seconds < 1.0


def test_a_closed_port_is_refused_not_raised(closed_port: int) -> None:
    assert probe_tcp("127.0.0.1", closed_port, timeout=1.0) == [ProbeOutcome("refused", None)]


def test_a_name_that_does_not_resolve_is_counted_as_unresolved() -> None:
    unresolved = ProbeOutcome("unresolved", None)
    assert probe_tcp("no-such-host.invalid", 80, timeout=1.0, count=3) == [unresolved] * 3


def test_histogram_buckets_are_cumulative_and_inclusive_of_their_bound() -> None:
    stats = PeerStats(bounds=[0.001, 0.01])
    stats.record([ProbeOutcome("ok", 0.001), ProbeOutcome("ok", 0.005), ProbeOutcome("ok", 2.0)])
    stats.record([ProbeOutcome("timeout", None)])
    assert stats.cumulative_buckets() == [("0.001", 1.0), ("0.01", 2.0), ("+Inf", 3.0)]
    assert stats.results["ok"] == 3 and stats.results["timeout"] == 1
    assert stats.last_ok is False


def test_each_peer_gets_a_histogram_and_unreachable_peers_are_counted(
    listener: int, closed_port: int, tmp_path: Any
) -> None:
    collector = collector_for(
        [
            {"name": "zk-1", "host": "127.0.0.1", "port": listener},
            {"name": "engine", "host": "127.0.0.1", "port": closed_port},
        ],
        tmp_path,
        probes_per_cycle=4,
    )
    list(collector.collect())
    metrics, health = split(collector.collect())
    collector.close()
    counts = samples(metrics, "gpuwarden_network_peer_rtt_seconds_count")
    assert counts == {(("peer", "engine"),): 0.0, (("peer", "zk-1"),): 8.0}
    probes = samples(metrics, "gpuwarden_network_peer_probes_total")
    assert probes[(("peer", "engine"), ("result", "refused"))] == 8.0
    assert probes[(("peer", "zk-1"), ("result", "ok"))] == 8.0
    assert samples(metrics, "gpuwarden_network_peer_up") == {
        (("peer", "engine"),): 0.0,
        (("peer", "zk-1"),): 1.0,
    }
    peers = {
        h.component: h
        for h in health
        if isinstance(h, HealthResult) and h.component.startswith("network.peer")
    }
    assert set(peers) == {"network.peer.engine", "network.peer.zk-1"}
    engine, zk = peers["network.peer.engine"], peers["network.peer.zk-1"]
    assert (engine.state, engine.suggested_action, dict(engine.labels)) == (
        State.DEGRADED,
        Action.CHECK_NETWORK,
        {"peer": "engine"},
    )
    assert engine.reason.endswith("unreachable this cycle: refused")
    assert (zk.state, dict(zk.labels)) == (State.HEALTHY, {"peer": "zk-1"})


def test_a_probe_to_ipv6_loopback_works_when_the_host_has_it(tmp_path: Any) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this kernel")
    try:
        server = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        server.bind(("::1", 0))
    except OSError:
        pytest.skip("::1 is not configured on this host")
    with server:
        server.listen(8)
        assert probe_tcp("::1", server.getsockname()[1], timeout=1.0)[0].result == "ok"


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"peers": [{"name": "a b", "host": "h", "port": 1}]}, "collectors.network.peers[0].name"),
        (
            {"peers": [{"name": "a", "host": "h", "port": 70000}]},
            "collectors.network.peers[0].port: must be <= 65535",
        ),
        ({"peers": [{"name": "a", "host": "h", "port": 1}] * 2}, "duplicate name(s) a"),
        (
            {"rtt_buckets": [0.1, 0.01]},
            "network.rtt_buckets: must be positive and strictly increasing",
        ),
        ({"interface_exclude": "("}, "collectors.network.interface_exclude: not a regular expression"),
        ({"probe_timeout": 5, "probes_per_cycle": 3}, "must be less than timeout"),
        (
            {"peers": [{"name": f"p{i}", "host": "h", "port": 1} for i in range(65)]},
            "collectors.network.peers",
        ),
    ],
)
def test_bad_network_settings_name_the_key_path(settings: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        from_mapping({"collectors": {"network": settings}})
    assert any(problem in line for line in err.value.problems), err.value.problems


def test_a_peer_whose_accept_queue_is_full_times_out_within_probe_timeout() -> None:
    # A listener that never accepts, with a backlog of 0: once one connection waits in its queue, the
    # kernel drops further SYNs, the way a hung server or a silent firewall behaves.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        queued = socket.create_connection(("127.0.0.1", port), timeout=1.0)
        try:
            [outcome] = probe_tcp("127.0.0.1", port, timeout=0.2)
        finally:
            queued.close()
    assert outcome == ProbeOutcome("timeout", None)
