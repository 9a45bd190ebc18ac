"""Every /v1 answer, through the real HTTP layer (in-process) and a real engine (dry-run, hook target)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from gpuwarden.agent import api as api_module
from gpuwarden.agent.http import Router
from gpuwarden.agent.server import HTTPServer
from gpuwarden.config import TLSSettings, from_mapping
from gpuwarden.remediations.engine import Engine
from gpuwarden.remediations.request import Request
from gpuwarden.remediations.triggers import Alert
from tests.unit.api_support import ALERTNAME, READ, api, auth, engine, serving, wait_outcome, webhook

Served = tuple[str, Engine]


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Served]:
    eng = engine(tmp_path).start()
    with serving(api(tmp_path, eng)) as url:
        yield url, eng
    eng.stop()


@pytest.fixture
def idle(tmp_path: Path) -> Iterator[Served]:
    """An engine that queues but never starts a run: what was submitted stays busy."""
    eng = engine(tmp_path, queue_size=1)
    with serving(api(tmp_path, eng)) as url:
        yield url, eng
    eng.stop()


def test_without_api_token_file_there_is_no_v1_route(tmp_path: Path) -> None:
    config = from_mapping({})
    assert api_module.build(config, lambda: None, lambda: None, logging.getLogger("t")) is None
    server = HTTPServer("127.0.0.1:0", TLSSettings(), Router([]))
    server.start()
    try:
        r = requests.post(f"{server.address}/v1/remediations/worker_restart", json={"reason": "x"}, timeout=5)
    finally:
        server.stop()
    assert r.status_code == 404 and "error" in r.json()


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token-wrong-token"}, {"X": "y"}])
def test_without_a_valid_token_the_answer_is_401_and_the_peer_is_logged(
    running: Served, headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    url, _ = running
    with caplog.at_level(logging.WARNING, logger="gpuwarden.api"):
        r = requests.post(f"{url}/v1/remediations/worker_restart", json={"reason": "x"}, headers=headers)
    assert r.status_code == 401 and r.json() == {"error": "missing or wrong bearer token"}
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert any("refused POST /v1/remediations/worker_restart from 127.0.0.1:" in m for m in caplog.messages)


def test_a_read_only_token_may_read_runs_but_not_trigger(running: Served) -> None:
    url, _ = running
    assert requests.get(f"{url}/v1/runs", headers=auth(READ)).status_code == 200
    r = requests.post(f"{url}/v1/remediations/worker_restart", json={"reason": "x"}, headers=auth(READ))
    assert r.status_code == 403 and "read-only" in r.json()["error"]


def test_a_manual_dry_run_is_accepted_and_its_plan_and_operator_are_in_the_audit_log(running: Served) -> None:
    url, eng = running
    body = {"reason": "OOM at 03:12, lowering", "dry_run": True, "params": {"gpu": 3}, "target": "other"}
    r = requests.post(f"{url}/v1/remediations/memory_fraction", json=body, headers=auth())
    assert r.status_code == 202, r.text
    run = r.json()["run"]
    assert r.json()["url"] == f"/v1/runs/{run}" and r.json()["dry_run"] is True
    assert wait_outcome(eng, run)["result"] == "dry_run"
    detail = requests.get(f"{url}/v1/runs/{run}", headers=auth(READ)).json()
    assert detail["actor"] == "user:alice" and detail["reason"] == "OOM at 03:12, lowering"
    assert [s["name"] for s in detail["plan"]["steps"]] == ["persist", "stop", "start", "ready"]
    trigger = next(x for x in detail["records"] if x["step"] == "trigger")
    assert trigger["labels"] == {"gpu": "3"} and trigger["source"] == "manual"
    listed = requests.get(f"{url}/v1/runs?playbook=memory_fraction", headers=auth()).json()
    assert [x["run"] for x in listed["runs"]] == [run]


@pytest.mark.parametrize(
    ("path", "body", "status", "complaint"),
    [
        ("/v1/remediations/worker_restart", b"{", 400, "Invalid JSON"),
        ("/v1/remediations/worker_restart", b"", 400, "(top level)"),
        ("/v1/remediations/worker_restart", b'{"reason": "x", "force": true}', 400, "force: unknown key"),
        ("/v1/remediations/worker_restart", b'{"reason": ""}', 400, "reason"),
        ("/v1/remediations/worker_restart", b'{"reason": "x", "dry_run": "yes"}', 400, "dry_run"),
        ("/v1/remediations/worker_restart", b'{"reason": "x", "target": "other"}', 400, "acts on worker"),
        ("/v1/remediations/reboot_node", b'{"reason": "x"}', 404, "playbook reboot_node is unknown"),
        ("/v1/pause", b'{"reason": "x", "playbook": "reboot_node"}', 404, "unknown"),
        ("/v1/pause", b'{"playbook": "worker_restart"}', 400, "reason: required"),
        ("/v1/alerts", b'{"version": "3"}', 400, "version"),
        ("/v1/alerts", b"[]", 400, "must be a mapping"),
    ],
)
def test_bad_requests_get_a_4xx_with_the_reason(
    running: Served, path: str, body: bytes, status: int, complaint: str
) -> None:
    url, _ = running
    headers = {**auth(), "Content-Type": "application/json"}
    r = requests.post(f"{url}{path}", data=body, headers=headers)
    assert r.status_code == status and complaint in r.json()["error"], r.text


def test_an_unknown_run_is_404(running: Served) -> None:
    url, _ = running
    for run in ("0123456789ab", "..%2F..%2Fetc"):
        r = requests.get(f"{url}/v1/runs/{run}", headers=auth())
        assert r.status_code == 404 and "error" in r.json()


def test_a_body_over_1_mib_is_413_and_another_content_type_415(running: Served) -> None:
    url, _ = running
    big = requests.post(f"{url}/v1/alerts", data=b"{" + b" " * (1 << 20), headers=auth())
    assert big.status_code == 413 and "error" in big.json()
    text = requests.post(
        f"{url}/v1/pause", data=b"reason=x", headers={**auth(), "Content-Type": "text/plain"}
    )
    assert text.status_code == 415 and text.json() == {"error": "body must be application/json"}


def test_a_paused_playbook_is_409_until_resumed_and_both_are_audited(running: Served) -> None:
    url, eng = running
    r = requests.post(f"{url}/v1/pause", json={"reason": "maintenance window"}, headers=auth())
    assert r.status_code == 200 and r.json()["paused"] == {"*": "maintenance window"}
    refused = requests.post(f"{url}/v1/remediations/worker_restart", json={"reason": "x"}, headers=auth())
    assert refused.status_code == 409 and "paused: maintenance window" in refused.json()["error"]
    assert requests.get(f"{url}/v1/runs", headers=auth()).json()["paused"] == {"*": "maintenance window"}
    r = requests.post(f"{url}/v1/resume", json={"reason": "window over"}, headers=auth())
    assert r.status_code == 200 and r.json()["paused"] == {}
    records = [x for x in eng.audit_records() if x["step"] in ("pause", "resume")]
    assert [(x["step"], x["actor"], x["reason"]) for x in records] == [
        ("pause", "user:alice", "maintenance window"),
        ("resume", "user:alice", "window over"),
    ]
    again = requests.post(f"{url}/v1/remediations/worker_restart", json={"reason": "x"}, headers=auth())
    assert again.status_code == 202


def test_a_run_in_progress_for_the_target_is_409_and_a_full_queue_429(idle: Served) -> None:
    url, _ = idle
    first = requests.post(f"{url}/v1/remediations/worker_restart", json={"reason": "a"}, headers=auth())
    assert first.status_code == 202
    busy = requests.post(f"{url}/v1/remediations/worker_restart", json={"reason": "b"}, headers=auth())
    assert busy.status_code == 409 and "already runs on worker" in busy.json()["error"]
    full = requests.post(f"{url}/v1/remediations/memory_fraction", json={"reason": "c"}, headers=auth())
    assert full.status_code == 429 and "queue full" in full.json()["error"]
    assert full.headers["Retry-After"] == "30"


def test_a_firing_allow_listed_alert_starts_one_run_and_its_duplicate_and_resolution_none(
    running: Served,
) -> None:
    url, eng = running
    first = requests.post(f"{url}/v1/alerts", json=webhook(), headers=auth())
    assert first.status_code == 202, first.text
    (result,) = first.json()["alerts"]
    assert result["outcome"] == "queued"
    (run,) = result["runs"]
    assert wait_outcome(eng, run)["result"] == "dry_run"
    duplicate = requests.post(f"{url}/v1/alerts", json=webhook(), headers=auth())
    assert duplicate.status_code == 200 and "duplicate" in duplicate.json()["alerts"][0]["reason"]
    resolved = requests.post(f"{url}/v1/alerts", json=webhook(status="resolved"), headers=auth())
    assert resolved.status_code == 200 and "only firing" in resolved.json()["alerts"][0]["reason"]
    triggers = [x for x in eng.audit_records() if x["step"] == "trigger"]
    assert [x["run"] for x in triggers] == [run]
    assert triggers[0]["actor"] == "alertmanager:gpuwarden-agents"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (webhook("GpuXidFatal"), "not allow-listed for any playbook"),
        (webhook(playbook="memory_fraction"), "not allow-listed for playbook memory_fraction"),
        (webhook(instance="gpu-7:9837"), "alert for gpu-7, not this node (gpu-1), and no fleet"),
    ],
)
def test_alerts_that_start_nothing_here_are_answered_200_with_why(
    running: Served, payload: dict, reason: str
) -> None:
    url, _ = running
    r = requests.post(f"{url}/v1/alerts", json=payload, headers=auth())
    assert r.status_code == 200 and reason in r.json()["alerts"][0]["reason"], r.text


def test_the_hop_header_and_the_receiver_allow_list_are_checked(tmp_path: Path) -> None:
    eng = engine(tmp_path)
    with serving(api(tmp_path, eng, receivers=["gpuwarden-agents"])) as url:
        hops = requests.post(
            f"{url}/v1/alerts", json=webhook(), headers={**auth(), "Gpuwarden-Forwarded": "-1"}
        )
        assert hops.status_code == 400 and "Gpuwarden-Forwarded" in hops.json()["error"]
        other = {**webhook(), "receiver": "someone-else"}
        r = requests.post(f"{url}/v1/alerts", json=other, headers=auth())
        assert r.status_code == 400 and "not in api.receivers" in r.json()["error"]
    eng.stop()


def test_without_the_engine_the_api_says_remediation_is_off(tmp_path: Path) -> None:
    with serving(api(tmp_path, None)) as url:
        r = requests.post(f"{url}/v1/remediations/worker_restart", json={"reason": "x"}, headers=auth())
        assert r.status_code == 404 and "not enabled on this agent" in r.json()["error"]
        assert requests.get(f"{url}/v1/runs", headers=auth()).json()["runs"] == []
        alert = requests.post(f"{url}/v1/alerts", json=webhook(), headers=auth())
        assert alert.status_code == 200 and alert.json()["alerts"][0]["outcome"] == "ignored"


def test_an_alert_refused_for_a_full_queue_is_taken_when_alertmanager_redelivers_it(tmp_path: Path) -> None:
    eng = engine(tmp_path, queue_size=1)  # not started: what is queued stays queued
    assert eng.submit(Request(playbook="memory_fraction", source="manual", actor="t", reason="fill")).accepted
    alert = Alert(ALERTNAME, "firing", "fp-1", "2026-12-01T00:00:00Z")
    (first,) = eng.alert(alert)
    assert not first.accepted and "queue full" in first.reason
    (retry,) = eng.alert(alert)  # Alertmanager retries a failed notification: not a duplicate
    assert not retry.accepted and "queue full" in retry.reason
    eng.stop()


def test_reset_re_arms_an_exhausted_playbook_or_leaves_storm_mode_and_refuses_when_nothing_is_stuck(
    tmp_path: Path,
) -> None:
    # The state an agent restarts into after its engine stopped: the rails rebuild it from the audit log.
    audit = tmp_path / "audit" / "audit.jsonl"
    audit.parent.mkdir()
    stuck = [
        {"ts": 1.0, "run": "-", "step": "storm", "playbook": "*", "target": "-",
         "reason": "3 disruptive runs"},
        {"ts": 2.0, "run": "r1", "step": "exhausted", "playbook": "worker_restart", "target": "worker",
         "reason": "3 attempts within 3600s"},
    ]  # fmt: skip
    audit.write_text("".join(json.dumps(r) + "\n" for r in stuck))
    eng = engine(tmp_path).start()
    with serving(api(tmp_path, eng)) as url:
        refused = requests.post(f"{url}/v1/remediations/worker_restart", json={"reason": "x"}, headers=auth())
        assert refused.status_code == 202  # queued; the rails skip it
        assert "storm mode" in wait_outcome(eng, refused.json()["run"])["reason"]
        read_only = requests.post(f"{url}/v1/reset", json={"reason": "x"}, headers=auth(READ))
        assert read_only.status_code == 403
        nothing = requests.post(
            f"{url}/v1/reset", json={"reason": "x", "playbook": "memory_fraction"}, headers=auth()
        )
        assert nothing.status_code == 409
        assert nothing.json()["error"] == "memory_fraction is not exhausted: nothing to reset"
        storm = requests.post(f"{url}/v1/reset", json={"reason": "hook fixed"}, headers=auth())
        assert storm.status_code == 200, storm.text
        assert storm.json() == {
            "status": "reset",
            "playbook": "*",
            "storm": None,
            "exhausted": {"worker_restart": "3 attempts within 3600s"},
        }
        again = requests.post(f"{url}/v1/reset", json={"reason": "again"}, headers=auth())
        assert again.status_code == 409 and "not in storm mode" in again.json()["error"]
        # The on-call verb, as a person types it.
        where = ["--agent", url, "--token-file", str(tmp_path / "tokens")]
        done = subprocess.run(
            [sys.executable, "-m", "gpuwarden", "reset", "--reason", "worker fixed by hand",
             "--playbook", "worker_restart", *where],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert (done.returncode, done.stdout, done.stderr) == (0, "reset: worker_restart re-armed\n", "")
        run = requests.post(f"{url}/v1/remediations/worker_restart", json={"reason": "y"}, headers=auth())
        assert wait_outcome(eng, run.json()["run"])["result"] == "dry_run"  # acts again
    eng.stop()
    resets = [r for r in eng.audit_records() if r["step"] == "reset"]
    assert [(r["playbook"], r["target"], r["actor"], r["reason"]) for r in resets] == [
        ("*", "-", "user:alice", "hook fixed"),
        ("worker_restart", "worker", "user:alice", "worker fixed by hand"),
    ]
