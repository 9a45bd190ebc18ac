"""Helpers for the remediation tests: the reference worker as a supervised target, transitions, waits."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from gpuwarden.health import State
from gpuwarden.remediations.audit import read
from gpuwarden.remediations.section import RemediationSettings
from tests.integration.worker_process import TOKEN
from tests.integration.zk_ensemble import free_ports


@dataclass(frozen=True)
class Transition:
    """The health stream's Transition (CONTRACTS.md), as the HealthStore delivers it to subscribers."""

    component: str
    new: State
    reason: str = "test"
    labels: Mapping[str, str] = field(default_factory=dict)
    old: State | None = None


class Worker:
    """Where the supervised reference worker listens, and how the tests poke it."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_ports(1)[0]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_file = tmp / "worker.log"
        self.env_file = tmp / "worker.env"
        self.token_file = tmp / "admin-token"
        self.token_file.write_text(TOKEN + "\n")
        self.model_dir = tmp / "model"

    def target(self) -> dict[str, Any]:
        return {
            "kind": "process",
            "argv": [
                sys.executable, "-m", "gpuwarden.worker", "--listen", f"127.0.0.1:{self.port}",
                "--model-dir", str(self.model_dir), "--admin-token-file", str(self.token_file),
                "--log-file", str(self.log_file), "--memory-fraction", "${GPUWARDEN_MEMORY_FRACTION}",
            ],
            "env_file": str(self.env_file),
            "log_file": str(self.log_file),
            "pid_file": str(self.env_file.with_suffix(".pid")),
            "ready_url": f"{self.url}/v2/health/ready",
            "stop_timeout_s": 2,
            "start_timeout_s": 30,
        }  # fmt: skip

    def fault(self, kind: str, **fields: Any) -> None:
        requests.post(
            f"{self.url}/admin/fault", json={"fault": kind, **fields},
            headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5,
        ).raise_for_status()  # fmt: skip

    def infer(self) -> int:
        """Status of one canary inference (the worker's own canary input)."""
        try:
            canary = json.loads((self.model_dir / "canary.json").read_text())
            body = {"inputs": canary["inputs"]}
            return requests.post(f"{self.url}/v2/models/canary/infer", json=body, timeout=3).status_code
        except (OSError, ValueError, requests.RequestException):
            return 0  # not generated yet, not listening yet, or hung

    def memory_fraction(self) -> str:
        text = requests.get(f"{self.url}/metrics", timeout=3).text
        line = next(x for x in text.splitlines() if x.startswith("vllm:cache_config_info{"))
        return line.split('gpu_memory_utilization="')[1].split('"')[0]


def settings(tmp: Path, worker: Worker, **playbooks: dict[str, Any]) -> RemediationSettings:
    return RemediationSettings.model_validate(
        {
            "enabled": True,
            "audit_log": str(tmp / "audit" / "audit.jsonl"),
            "startup_grace_s": 0,
            "targets": {"worker": worker.target()},
            "playbooks": playbooks,
        }
    )


def fast_rails(**overrides: Any) -> dict[str, Any]:
    return {"grace_s": 0, "cooldown_s": 0, "backoff_initial_s": 0, "verify_timeout_s": 20, **overrides}


def outcomes(audit_log: Path) -> list[dict[str, Any]]:
    return [r for r in read(audit_log) if r["step"] == "outcome"]


def wait_for(condition: Callable[[], object], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        time.sleep(0.05)
