"""The on-call CLI against something that is not a healthy agent: an endless or trickling answer, a TLS
certificate it does not trust. Each is one line on stderr and exit 69 within --timeout, never a hang."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from gpuwarden.agent.http import Router
from gpuwarden.agent.server import HTTPServer
from gpuwarden.config import TLSSettings
from gpuwarden.remediations.client import MAX_ANSWER
from tests.local_servers import self_signed, serve_handler
from tests.unit.api_support import api, engine, token_files


class NotAnAgent(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if self.path.startswith("/endless"):
            self.end_headers()
            chunk, size = b" " * 65536, 0
        else:  # a byte at a time: every read succeeds, the answer never completes
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            chunk, size = b" ", 0
        try:
            while size < 4 * MAX_ANSWER:
                self.wfile.write(chunk)
                size += len(chunk)
                if len(chunk) == 1:
                    self.wfile.flush()
                    time.sleep(0.05)
        except OSError:
            return  # the CLI gave up

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def not_an_agent() -> Iterator[str]:
    with serve_handler(NotAnAgent) as url:
        yield url


def oncall(tmp_path: Path, agent: str, *args: str) -> tuple[int, str, str]:
    tokens, _ = token_files(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "gpuwarden", *args, "--agent", agent, "--token-file", str(tokens)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return done.returncode, done.stdout, done.stderr


@pytest.mark.timeout(60)  # an unbounded read would hang here
def test_an_endless_or_trickling_answer_is_one_line_and_exit_69(not_an_agent: str, tmp_path: Path) -> None:
    endless = f"{not_an_agent}/endless"
    assert oncall(tmp_path, endless, "runs") == (
        69, "", f"gpuwarden: {endless} answered more than {MAX_ANSWER} bytes: is it a gpuwarden agent?\n"
    )  # fmt: skip
    assert oncall(tmp_path, not_an_agent, "runs", "--timeout", "1") == (
        69, "", f"gpuwarden: the agent at {not_an_agent} did not answer within 1s\n"
    )  # fmt: skip


def test_an_agent_over_https_needs_its_ca_and_works_with_ca_file(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    eng = engine(tmp_path)
    tls = TLSSettings(cert_file=str(cert), key_file=str(key))
    server = HTTPServer("127.0.0.1:0", tls, Router(api(tmp_path, eng).routes()))
    server.start()
    url = server.address
    try:
        untrusted = oncall(tmp_path, url, "runs")
        trusted = oncall(tmp_path, url, "runs", "--ca-file", str(cert))
    finally:
        server.stop()
        eng.stop()
    assert untrusted == (
        69, "", f"gpuwarden: cannot reach the agent at {url}: TLS certificate not trusted "
        "(pass --ca-file)\n",
    )  # fmt: skip
    assert trusted[0] == 0 and trusted[1].splitlines()[0].split()[:3] == ["STARTED", "RUN", "PLAYBOOK"]
