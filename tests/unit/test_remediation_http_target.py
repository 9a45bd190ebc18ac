"""The HTTP hook target and the autoscaler hook of scale_signal: what they POST, and a hook that
misbehaves is a TargetError with its reason, read through the same bounded reader as every other answer
from another program."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from gpuwarden.remediations.playbooks.scale_signal import ScaleSignal, ScaleSignalSettings
from gpuwarden.remediations.registry import PlaybookContext
from gpuwarden.remediations.request import Request
from gpuwarden.remediations.settings import HttpTargetSettings
from gpuwarden.remediations.targets import HttpTarget, TargetError, http_ready
from tests.local_servers import serve_handler


class Hook(BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, str]]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Hook.received.append((self.headers.get("Authorization", ""), body))
        if self.path == "/endless":
            self.send_response(200)
            self.end_headers()
            while True:  # the client gives up at its cap; the write then fails
                self.wfile.write(b"x" * 65536)
        if self.path == "/trickle":  # every read gets a byte; the answer never completes
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            try:
                for _ in range(10_000):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                return
        self.send_response(500 if self.path == "/broken" else 202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[str]:
    Hook.received = []
    with serve_handler(Hook) as url:
        yield url


def target(url: str, tmp_path: Path) -> HttpTarget:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    return HttpTarget("worker", HttpTargetSettings(url=url, token_file=str(token)))


def test_stop_posts_the_action_and_target_with_the_bearer_token(hook: str, tmp_path: Path) -> None:
    target(f"{hook}/hook", tmp_path).stop()
    assert Hook.received == [("Bearer s3cret", {"action": "stop", "target": "worker"})]
    assert http_ready(f"{hook}/ready", 2.0)


def test_a_failing_or_endless_hook_is_a_target_error_with_the_reason(hook: str, tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="HTTP 500"):
        target(f"{hook}/broken", tmp_path).stop()
    with pytest.raises(TargetError, match="too_large"):
        target(f"{hook}/endless", tmp_path).stop()
    with pytest.raises(TargetError, match="unreachable"):
        target("http://127.0.0.1:9/hook", tmp_path).stop()
    assert not http_ready("http://127.0.0.1:9/ready", 1.0)


def scale_step(hook: str, tmp_path: Path, timeout: float = 5.0) -> Callable[[], None]:
    """The `webhook` step of a scale_signal plan (no fleet: this node decides alone)."""
    settings = ScaleSignalSettings(enabled=True, webhook_url=hook, webhook_timeout_s=timeout)
    playbook = ScaleSignal(settings, PlaybookContext(target(f"{hook}/unused", tmp_path), lambda _: None))
    plan = playbook.plan(Request("scale_signal", "manual", "user:t", "p99 high", labels={"direction": "up"}))
    (step,) = [s for s in plan.steps if s.name == "webhook"]
    return step.run


def test_the_autoscaler_hook_gets_the_decision_and_a_misbehaving_one_fails_the_step(
    hook: str, tmp_path: Path
) -> None:
    scale_step(f"{hook}/scale", tmp_path)()
    ((_, decision),) = Hook.received
    assert decision["direction"] == "up" and decision["cluster"] is None and decision["node"] == "local"
    with pytest.raises(TargetError, match="autoscaler hook: HTTP 500"):
        scale_step(f"{hook}/broken", tmp_path)()
    with pytest.raises(TargetError, match="too_large: body larger than 1048576 bytes"):
        scale_step(f"{hook}/endless", tmp_path)()
    late = "timeout: no complete answer within 1s (remediation.playbooks.scale_signal.webhook_timeout_s)"
    with pytest.raises(TargetError, match=re.escape(late)):
        scale_step(f"{hook}/trickle", tmp_path, timeout=1.0)()
