"""An API on the real HTTP layer, in-process, with a real engine whose target is an HTTP hook nobody
answers (the engine is in dry-run mode, so it only ever plans)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gpuwarden.agent.api import Api
from gpuwarden.agent.api_auth import ApiSettings
from gpuwarden.agent.http import Router
from gpuwarden.agent.server import HTTPServer
from gpuwarden.config import TLSSettings
from gpuwarden.remediations.engine import Engine
from gpuwarden.remediations.section import RemediationSettings

WRITE = "0123456789abcdef0123456789abcdef"
READ = "fedcba9876543210fedcba9876543210"
ALERTNAME = "WorkerDown"


def token_files(tmp: Path) -> tuple[Path, Path]:
    write, read = tmp / "tokens", tmp / "read-tokens"
    write.write_text(f"alice:{WRITE}\n")
    read.write_text(f"viewer:{READ}\n")
    write.chmod(0o600)
    read.chmod(0o600)
    return write, read


def engine(tmp: Path, queue_size: int = 64) -> Engine:
    rails = {"grace_s": 0, "cooldown_s": 0, "backoff_initial_s": 0}
    settings = RemediationSettings.model_validate(
        {
            "enabled": True,
            "dry_run": True,
            "audit_log": str(tmp / "audit" / "audit.jsonl"),
            "startup_grace_s": 0,
            "queue_size": queue_size,
            "targets": {
                "worker": {
                    "kind": "http",
                    "url": "http://127.0.0.1:9/hook",
                    "ready_url": "http://127.0.0.1:9/ready",  # nobody: the worker is down
                    "env_file": str(tmp / "w.env"),
                },
                "other": {"kind": "http", "url": "http://127.0.0.1:9/hook", "env_file": str(tmp / "o.env")},
            },
            "playbooks": {
                "worker_restart": {
                    "enabled": True,
                    "triggers": [{"kind": "alert", "alertname": ALERTNAME}],
                    "rails": rails,
                },
                "memory_fraction": {"enabled": True, "target": "other", "rails": rails},
            },
        }
    )
    return Engine(settings)


def api(tmp: Path, eng: Engine | None, node: str = "gpu-1", **settings: Any) -> Api:
    write, read = token_files(tmp)
    api_settings = ApiSettings(token_file=str(write), read_token_file=str(read), **settings)
    return Api(api_settings, node, lambda: eng)


@contextmanager
def serving(api: Api) -> Iterator[str]:
    server = HTTPServer("127.0.0.1:0", TLSSettings(), Router(api.routes()))
    server.start()
    try:
        yield server.address
    finally:
        server.stop()


def auth(token: str = WRITE) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def webhook(alertname: str = ALERTNAME, status: str = "firing", **labels: str) -> dict[str, Any]:
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "alertmanager" / "webhook-v4-firing.json"
    payload: dict[str, Any] = json.loads(fixture.read_text())
    payload["status"] = status
    alert = payload["alerts"][0]
    alert["status"] = status
    alert["labels"] = {"alertname": alertname, "instance": "gpu-1:9837", **labels}
    return payload


def wait_outcome(eng: Engine, run: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for r in eng.audit_records():
            if r["run"] == run and r["step"] == "outcome":
                return r
        time.sleep(0.05)
    raise AssertionError(f"run {run} has no outcome after {timeout}s")
