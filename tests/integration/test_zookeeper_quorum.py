"""The quorum checker against a real 3-node ZooKeeper ensemble: the verdicts that on-call relies on."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from gpuwarden import config as configmod
from gpuwarden.agent.context import collector_context
from gpuwarden.agent.registry import REGISTRY
from gpuwarden.collectors.zookeeper.collector import check
from gpuwarden.collectors.zookeeper.parse import Mode
from gpuwarden.collectors.zookeeper.verdict import EnsembleVerdict, Verdict
from gpuwarden.health import State
from tests.golden import split
from tests.integration.zk_ensemble import Ensemble

pytestmark = pytest.mark.integration


def zk_check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpuwarden", "zookeeper", "check", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def wait_verdict(ensemble: Ensemble, wanted: Verdict, timeout: float = 30.0) -> EnsembleVerdict:
    deadline = time.monotonic() + timeout
    while True:
        verdict, _ = check(ensemble.addresses, [], 1.0)
        if verdict.verdict is wanted or time.monotonic() > deadline:
            return verdict
        time.sleep(0.2)


def test_the_registered_collector_reports_a_healthy_ensemble_as_quorum_ok(zk_ensemble: Ensemble) -> None:
    cfg = configmod.from_mapping(
        {"collectors": {"zookeeper": {"enabled": True, "ensemble": "test", "servers": zk_ensemble.addresses}}}
    )
    spec = REGISTRY["zookeeper"]
    ctx = collector_context(cfg, logging.getLogger("test"))
    collector = spec.factory(cfg.collector_settings("zookeeper"), ctx)
    metrics, health = split(collector.collect())
    samples = {(s.name, s.labels.get("server", "")): s.value for m in metrics for s in m.samples}
    assert samples[("gpuwarden_zookeeper_quorum_ok", "")] == 1
    assert samples[("gpuwarden_zookeeper_tolerable_failures", "")] == 1
    assert samples[("gpuwarden_zookeeper_synced_followers", "")] == 2
    assert all(samples[("gpuwarden_zookeeper_server_up", a)] == 1 for a in zk_ensemble.addresses)
    assert [(h.component, h.state) for h in health] == [("zookeeper.quorum", State.HEALTHY)] + [
        (f"zookeeper.server.{a}", State.HEALTHY) for a in zk_ensemble.addresses
    ]


def test_zk_check_on_a_healthy_ensemble_names_the_leader_and_exits_0(zk_ensemble: Ensemble) -> None:
    leader = zk_ensemble.leader()
    assert leader is not None
    done = zk_check("--servers", ",".join(zk_ensemble.addresses))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ZooKeeper ensemble default: OK" in done.stdout
    assert f"leader {leader.address}, 3 of 3 voters in sync, tolerates 1 failure(s)" in done.stdout
    as_json = json.loads(zk_check("--servers", ",".join(zk_ensemble.addresses), "--json").stdout)
    assert as_json["servers"][leader.address] == "leader"


def test_zk_check_reads_the_ensemble_from_the_agent_config(zk_ensemble: Ensemble, tmp_path) -> None:  # noqa: ANN001
    config = tmp_path / "agent.yaml"
    config.write_text(f"fleet:\n  hosts: {json.dumps(zk_ensemble.addresses)}\n")
    done = zk_check("--config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr


def test_stopping_the_leader_degrades_with_a_new_leader_then_a_second_stop_loses_quorum_despite_imok(
    make_ensemble: Callable[..., Ensemble],
) -> None:
    ensemble = make_ensemble()
    old_leader = ensemble.leader()
    assert old_leader is not None
    ensemble.kill(old_leader)

    degraded = wait_verdict(ensemble, Verdict.DEGRADED)
    assert degraded.verdict is Verdict.DEGRADED, degraded.reasons
    assert degraded.leader not in (None, old_leader.address)
    assert degraded.tolerable_failures == 0
    assert any(old_leader.address in r and "unreachable" in r for r in degraded.reasons)
    done = zk_check("--servers", ",".join(ensemble.addresses))
    assert done.returncode == 1 and "DEGRADED" in done.stdout

    follower = next(m for m in ensemble.members if m.address not in (old_leader.address, degraded.leader))
    ensemble.kill(follower)
    survivor = next(m for m in ensemble.members if m.address == degraded.leader)

    lost, status = check(ensemble.addresses, [], 1.0)
    assert lost.verdict is Verdict.NO_QUORUM, lost.reasons
    assert lost.quorum_ok is False
    # The survivor's process is alive and says so: ruok alone would have called this healthy.
    assert status[survivor.address].ruok is True
    assert status[survivor.address].mode in (Mode.LEADER, Mode.NOT_SERVING, Mode.READ_ONLY)
    done = zk_check("--servers", ",".join(ensemble.addresses))
    assert done.returncode == 2, done.stdout
    assert "NO_QUORUM" in done.stdout


def test_the_default_srvr_only_whitelist_is_judged_from_srvr(
    make_ensemble: Callable[..., Ensemble],
) -> None:
    ensemble = make_ensemble(whitelist="srvr")  # ZooKeeper's own default since 3.5.3
    verdict, status = check(ensemble.addresses, [], 1.0)
    assert verdict.verdict is Verdict.OK, verdict.reasons
    assert sorted(s.mode for s in status.values()) == [Mode.FOLLOWER, Mode.FOLLOWER, Mode.LEADER]
    assert "from srvr" in verdict.reasons[0]
    done = zk_check("--servers", ",".join(ensemble.addresses))
    assert done.returncode == 0, done.stdout


def test_a_standalone_server_that_allows_only_srvr_is_ok(make_ensemble: Callable[..., Ensemble]) -> None:
    server = make_ensemble(size=1, whitelist="srvr", standalone=True)
    verdict, status = check(server.addresses, [], 1.0)
    assert verdict.verdict is Verdict.OK, verdict.reasons
    assert status[server.addresses[0]].mode is Mode.STANDALONE
    done = zk_check("--servers", server.addresses[0])
    assert done.returncode == 0, done.stdout
