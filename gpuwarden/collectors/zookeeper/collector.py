"""The `zookeeper` collector: probes every configured server each cycle and exports the quorum verdict.

Metrics carry an `ensemble` label so one Prometheus can judge several ensembles with `sum by (ensemble)`
(awesome-prometheus-alerts' bare `sum()` assumes one). Per-server series carry `server` (host:port from
config, so the label set is bounded by the config). When the verdict is UNKNOWN (whitelist), quorum_ok and
tolerable_failures are left out rather than exported as 0: a refused probe is not a measured zero.
"""

from __future__ import annotations

from collections.abc import Iterator

from gpuwarden.agent.registry import CollectionFailed, CollectorContext, Item, register
from gpuwarden.catalog import Families, MetricSpec
from gpuwarden.collectors.zookeeper.parse import SERVING_MODES, Mode, ServerStatus
from gpuwarden.collectors.zookeeper.probe import MAX_REPLY_BYTES, probe_all
from gpuwarden.collectors.zookeeper.settings import ZookeeperSettings
from gpuwarden.collectors.zookeeper.verdict import EnsembleVerdict, Verdict, describe, judge
from gpuwarden.health import Action, HealthResult, State


def _server_catalog(name: str, help_text: str, unit: str = "") -> MetricSpec:
    return MetricSpec(f"gpuwarden_zookeeper_{name}", "gauge", help_text, ("ensemble", "server"), unit)


CATALOG = (
    MetricSpec(
        "gpuwarden_zookeeper_quorum_ok",
        "gauge",
        "1 if one leader and a majority of the configured voters are in sync; absent when UNKNOWN.",
        labels=("ensemble",),
    ),
    MetricSpec(
        "gpuwarden_zookeeper_tolerable_failures",
        "gauge",
        "Voters that may still fail before quorum is lost (synced voters - majority, floor 0).",
        labels=("ensemble",),
    ),
    MetricSpec(
        "gpuwarden_zookeeper_verdict",
        "gauge",
        "1 for the ensemble's current verdict (OK, DEGRADED, NO_QUORUM, SPLIT, UNKNOWN), 0 for the others.",
        labels=("ensemble", "verdict"),
    ),
    MetricSpec("gpuwarden_zookeeper_voters", "gauge", "Voting members in the config.", labels=("ensemble",)),
    MetricSpec(
        "gpuwarden_zookeeper_leaders", "gauge", "Servers that report Mode leader.", labels=("ensemble",)
    ),
    MetricSpec(
        "gpuwarden_zookeeper_synced_followers",
        "gauge",
        "Voting followers in sync with the leader (leader's zk_synced_followers).",
        labels=("ensemble",),
    ),
    MetricSpec(
        "gpuwarden_zookeeper_learners",
        "gauge",
        "Followers and observers connected to the leader (zk_learners, zk_followers before 3.6).",
        labels=("ensemble",),
    ),
    MetricSpec(
        "gpuwarden_zookeeper_pending_syncs", "gauge", "Leader's zk_pending_syncs.", labels=("ensemble",)
    ),
    _server_catalog("server_up", "1 if the server serves clients (leader, follower, observer, standalone)."),
    MetricSpec(
        "gpuwarden_zookeeper_server_mode",
        "gauge",
        "1 for the server's mode as the checker sees it, 0 for the other modes.",
        labels=("ensemble", "server", "mode"),
    ),
    _server_catalog("avg_latency_seconds", "Average request latency (zk_avg_latency).", "seconds"),
    _server_catalog(
        "max_latency_seconds", "Maximum request latency since reset (zk_max_latency).", "seconds"
    ),
    _server_catalog("outstanding_requests", "Queued requests (zk_outstanding_requests)."),
    _server_catalog("znodes", "Znodes in the data tree (zk_znode_count)."),
    _server_catalog("watches", "Watches set by clients (zk_watch_count)."),
    _server_catalog("alive_connections", "Client connections (zk_num_alive_connections)."),
    _server_catalog("probe_duration_seconds", "Wall time of the four-letter-word probe.", "seconds"),
)

# mntr field → (metric suffix, scale). ZooKeeper reports latency in milliseconds.
SERVER_FIELDS = (
    ("zk_avg_latency", "avg_latency_seconds", 1e-3),
    ("zk_max_latency", "max_latency_seconds", 1e-3),
    ("zk_outstanding_requests", "outstanding_requests", 1.0),
    ("zk_znode_count", "znodes", 1.0),
    ("zk_watch_count", "watches", 1.0),
    ("zk_num_alive_connections", "alive_connections", 1.0),
)

HEALTH = {
    Verdict.OK: (State.HEALTHY, Action.NONE),
    Verdict.DEGRADED: (State.DEGRADED, Action.CHECK_NETWORK),
    Verdict.NO_QUORUM: (State.UNHEALTHY, Action.CHECK_NETWORK),
    Verdict.SPLIT: (State.UNHEALTHY, Action.CHECK_NETWORK),
    Verdict.UNKNOWN: (State.UNKNOWN, Action.FIX_CONFIG),
}


def check(
    voters: list[str], observers: list[str], timeout: float, max_reply_bytes: int = MAX_REPLY_BYTES
) -> tuple[EnsembleVerdict, dict[str, ServerStatus]]:
    """Probe and judge. A SPLIT is re-probed once: two leaders are normally a transient of an election."""
    status = probe_all([*voters, *observers], timeout, max_reply_bytes)
    verdict = judge(voters, observers, status)
    if verdict.verdict is Verdict.SPLIT:
        status = probe_all([*voters, *observers], timeout, max_reply_bytes)
        verdict = judge(voters, observers, status)
    return verdict, status


def export(ensemble: str, verdict: EnsembleVerdict, status: dict[str, ServerStatus]) -> Iterator[Item]:
    fams = Families(CATALOG)
    if verdict.quorum_ok is not None:
        fams.add("gpuwarden_zookeeper_quorum_ok", verdict.quorum_ok, ensemble=ensemble)
        fams.add("gpuwarden_zookeeper_tolerable_failures", verdict.tolerable_failures or 0, ensemble=ensemble)
    for v in Verdict:
        fams.add("gpuwarden_zookeeper_verdict", v is verdict.verdict, ensemble=ensemble, verdict=v.value)
    fams.add("gpuwarden_zookeeper_voters", verdict.voters, ensemble=ensemble)
    fams.add(
        "gpuwarden_zookeeper_leaders", sum(s.mode is Mode.LEADER for s in status.values()), ensemble=ensemble
    )
    if verdict.leader is not None:
        leader = status[verdict.leader]
        for field_names, metric in (
            (("zk_synced_followers",), "synced_followers"),
            (("zk_learners", "zk_followers"), "learners"),
            (("zk_pending_syncs",), "pending_syncs"),
        ):
            value = leader.stat(*field_names)
            if value is not None:
                fams.add(f"gpuwarden_zookeeper_{metric}", value, ensemble=ensemble)
    for address, s in status.items():
        labels = {"ensemble": ensemble, "server": address}
        fams.add("gpuwarden_zookeeper_server_up", s.mode in SERVING_MODES, **labels)
        for mode in Mode:
            fams.add("gpuwarden_zookeeper_server_mode", mode is s.mode, mode=mode.value, **labels)
        for field_name, metric, scale in SERVER_FIELDS:
            if field_name in s.stats:
                fams.add(f"gpuwarden_zookeeper_{metric}", s.stats[field_name] * scale, **labels)
        fams.add("gpuwarden_zookeeper_probe_duration_seconds", s.probe_seconds, **labels)
    yield from fams
    state, action = HEALTH[verdict.verdict]
    reason = f"{ensemble}: {verdict.verdict.value}: " + "; ".join(verdict.reasons)
    yield HealthResult("zookeeper.quorum", state, reason, action, labels={"ensemble": ensemble})
    for s in status.values():
        yield server_health(ensemble, s)


def server_health(ensemble: str, s: ServerStatus) -> HealthResult:
    """One result per configured server (`zookeeper.server.<host:port>`, label `server`). A server that
    does not serve is DEGRADED: whether the ensemble still has quorum is `zookeeper.quorum`'s verdict."""
    component, labels = f"zookeeper.server.{s.address}", {"ensemble": ensemble, "server": s.address}
    if s.mode in SERVING_MODES:
        return HealthResult(component, State.HEALTHY, f"{s.address}: {s.mode.value}", labels=labels)
    if s.mode is Mode.WHITELIST_BLOCKED:
        return HealthResult(component, State.UNKNOWN, describe(s), Action.FIX_CONFIG, labels=labels)
    return HealthResult(component, State.DEGRADED, describe(s), Action.CHECK_NETWORK, labels=labels)


@register("zookeeper", ZookeeperSettings)
class ZookeeperCollector:
    def __init__(self, settings: ZookeeperSettings, ctx: CollectorContext) -> None:
        self.settings = settings
        self.voters = list(settings.servers) or list(ctx.fleet_hosts)
        if not self.voters:
            raise ValueError("collectors.zookeeper.servers is empty and fleet.hosts names no servers")
        self.observers = list(settings.observers)

    def close(self) -> None:
        pass  # every probe opens and closes its own sockets

    def collect(self) -> Iterator[Item]:
        s = self.settings
        verdict, status = check(self.voters, self.observers, s.probe_timeout, s.max_reply_bytes)
        yield from export(self.settings.ensemble, verdict, status)
        # A server that does not answer is data (the verdict counts it); one that answers nonsense (NaN, a
        # reply past the cap) is a source the collector cannot read: the collection says so.
        broken = sorted(a for a, st in status.items() if st.mode is Mode.BAD_REPLY)
        if broken:
            yield CollectionFailed(f"unreadable replies from {', '.join(broken)}")
