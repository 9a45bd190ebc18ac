"""Agents serving the /v1 API, and Debian's Alertmanager routing playbook alerts to them."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from gpuwarden.remediations.audit import read
from tests.integration.agent_process import AgentProcess, free_port, only_collectors

TOKEN = "0123456789abcdef0123456789abcdef"


def token_file(tmp: Path, text: str = f"oncall:{TOKEN}\n", mode: int = 0o600) -> Path:
    path = tmp / "api-tokens"
    path.write_text(text)
    path.chmod(mode)
    return path


def agent_config(
    tmp: Path, node: str, remediation: dict[str, Any] | None, fleet: dict[str, Any] | None = None
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "agent": {"listen": f"127.0.0.1:{free_port()}"},
        "collectors": only_collectors({}),
        "api": {"token_file": str(token_file(tmp))},
        "fleet": {"node": node, **(fleet or {})},
    }
    if remediation is not None:
        config["remediation"] = {
            "enabled": True,
            "audit_log": str(tmp / "audit" / "audit.jsonl"),
            "startup_grace_s": 0,
            **remediation,
        }
    return config


def start_agent(tmp: Path, config: dict[str, Any]) -> tuple[AgentProcess, str]:
    agent = AgentProcess(tmp, config, watchdog_usec=None)
    agent.wait_message("READY=1", timeout=60)
    return agent, f"http://{config['agent']['listen']}"


def triggers(audit_log: Path) -> list[dict[str, Any]]:
    if not audit_log.exists():
        return []
    return [r for r in read(audit_log) if r["step"] == "trigger"]


def firing(alertname: str, **labels: str) -> dict[str, Any]:
    start = datetime.now(UTC).isoformat()
    return {
        "labels": {"alertname": alertname, **labels},
        "startsAt": start,
        "annotations": {"summary": "$(id)"},
    }


@contextmanager
def alertmanager(tmp: Path, agents_url: str, token: Path, name: str = "am") -> Iterator[str]:
    """An Alertmanager (no HA gossip) whose only route sends every alert with a `playbook` label to the
    agents' webhook, the way deploy/alertmanager routes them, with short timers for a test."""
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        pytest.fail("Alertmanager is missing: `make deps-debian` installs Debian's prometheus-alertmanager")
    config = {
        "route": {
            "receiver": "nobody",
            "routes": [
                {
                    "receiver": "gpuwarden-agents",
                    "matchers": ['playbook=~".+"'],
                    "group_by": ["alertname", "instance", "playbook"],
                    "group_wait": "1s",
                    "group_interval": "2s",
                    "repeat_interval": "1h",
                }
            ],
        },
        "receivers": [
            {"name": "nobody"},
            {
                "name": "gpuwarden-agents",
                "webhook_configs": [
                    {
                        "url": f"{agents_url}/v1/alerts",
                        "send_resolved": True,
                        "max_alerts": 0,
                        "http_config": {"authorization": {"type": "Bearer", "credentials_file": str(token)}},
                    }
                ],
            },
        ],
    }
    (tmp / f"{name}.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp / f'{name}.yml'}",
            f"--storage.path={tmp / f'{name}-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp / f"{name}.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait(lambda: _ready(url), 30, "Alertmanager ready")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/-/ready", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def post_alerts(am: str, alerts: list[dict[str, Any]]) -> None:
    requests.post(f"{am}/api/v2/alerts", json=alerts, timeout=5).raise_for_status()


def webhook_sent(am: str) -> tuple[float, float]:
    """(notifications sent, failed) by the webhook integration, from Alertmanager's own metrics."""
    sent = failed = 0.0
    for line in requests.get(f"{am}/metrics", timeout=5).text.splitlines():
        if 'integration="webhook"' not in line or line.startswith("#"):
            continue
        if line.startswith("alertmanager_notifications_total"):
            sent += float(line.rsplit(" ", 1)[1])
        elif line.startswith("alertmanager_notifications_failed_total"):
            failed += float(line.rsplit(" ", 1)[1])
    return sent, failed


def wait(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout}s")
