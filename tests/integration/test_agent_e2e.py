"""The real agent as a subprocess: sd_notify, scrape, promtool, reload, stop, IPv6, TLS, logs."""

from __future__ import annotations

import json
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration.agent_process import AgentProcess, free_port, get, only_collectors

pytestmark = pytest.mark.integration


def node_config(port: int, **agent: Any) -> dict[str, Any]:
    return {
        "agent": {"listen": f"127.0.0.1:{port}", **agent},
        "collectors": only_collectors({"node": {"interval": 0.5, "disk_paths": ["/"]}}),
    }


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[tuple[AgentProcess, str]]:
    port = free_port()
    proc = AgentProcess(tmp_path, node_config(port))
    proc.wait_message("READY=1")
    yield proc, f"http://127.0.0.1:{port}"
    proc.stop()


def test_ready_is_sent_after_the_first_collection_and_the_watchdog_is_fed(
    agent: tuple[AgentProcess, str],
) -> None:
    proc, url = agent
    ready = next(m for m in proc.messages if "READY=1" in m)
    assert "STATUS=serving on http://127.0.0.1:" in ready and "collectors: node" in ready
    # READY came after the first collection: the very first scrape already holds node data.
    assert "gpuwarden_node_memory_total_bytes" in get(f"{url}/metrics").text
    proc.wait_message("WATCHDOG=1", timeout=3)


def test_the_scrape_passes_promtool_check_metrics(agent: tuple[AgentProcess, str]) -> None:
    _, url = agent
    response = get(f"{url}/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    check = subprocess.run(["promtool", "check", "metrics"], input=response.content, capture_output=True)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
    assert check.stdout.decode() + check.stderr.decode() == ""
    for series in (
        'gpuwarden_build_info{version="',
        'gpuwarden_collector_success{collector="node"} 1.0',
        'gpuwarden_collector_duration_seconds{collector="node"}',
        'gpuwarden_collector_last_success_timestamp_seconds{collector="node"}',
        "process_resident_memory_bytes",
        "gpuwarden_config_last_reload_successful 1.0",
    ):
        assert series in response.text


def test_gzip_scrapes_get_the_same_exposition(agent: tuple[AgentProcess, str]) -> None:
    _, url = agent
    response = get(f"{url}/metrics", headers={"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip"
    assert "gpuwarden_node_load1" in response.text  # requests decompresses


def test_health_endpoints_report_components_and_liveness(agent: tuple[AgentProcess, str]) -> None:
    _, url = agent
    health = get(f"{url}/health").json()
    components = {c["component"]: c for c in health["components"]}
    assert components["node.memory"]["state"] in {"HEALTHY", "DEGRADED"}
    assert set(components["node.memory"]) == {
        "component",
        "state",
        "reason",
        "suggested_action",
        "labels",
        "since",
        "timestamp",
    }
    assert get(f"{url}/healthz").text == "ok\n"
    assert get(f"{url}/nope").status_code == 404


def test_sighup_with_a_good_config_applies_it(agent: tuple[AgentProcess, str], tmp_path: Path) -> None:
    proc, url = agent
    config = node_config(int(url.rsplit(":", 1)[1]))
    config["collectors"]["node"]["disk_paths"] = ["/", str(tmp_path)]
    proc.write_config(config)
    proc.signal(signal.SIGHUP)
    proc.wait_message("STATUS=configuration reloaded")
    assert any(m.startswith("RELOADING=1") for m in proc.messages)
    text = get(f"{url}/metrics").text
    assert f'gpuwarden_node_filesystem_size_bytes{{path="{tmp_path}"}}' in text
    assert "gpuwarden_config_last_reload_successful 1.0" in text


def test_sighup_with_a_bad_config_keeps_the_old_one_running(agent: tuple[AgentProcess, str]) -> None:
    proc, url = agent
    proc.config_path.write_text("collectors:\n  node:\n    interval: -5\n")
    proc.signal(signal.SIGHUP)
    proc.wait_message("STATUS=reload failed")
    text = get(f"{url}/metrics").text
    assert "gpuwarden_config_last_reload_successful 0.0" in text
    assert 'gpuwarden_collector_success{collector="node"} 1.0' in text
    assert "config: collectors.node.interval: must be > 0" in proc.stderr()
    before = get(f"{url}/metrics").text
    time.sleep(1.2)  # the old config's collectors keep running on their 0.5 s interval
    assert get(f"{url}/metrics").text != before


def test_sigterm_stops_cleanly_within_five_seconds(agent: tuple[AgentProcess, str]) -> None:
    proc, _ = agent
    start = time.monotonic()
    proc.signal(signal.SIGTERM)
    assert proc.proc.wait(5) == 0
    assert time.monotonic() - start < 5
    proc.wait_message("STOPPING=1", timeout=1)
    assert "Traceback" not in proc.stderr()


def test_the_agent_listens_on_ipv6_loopback(tmp_path: Path) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        port = free_port(socket.AF_INET6, "::1")
    except OSError:
        pytest.skip("::1 is not configured on this machine")
    proc = AgentProcess(tmp_path, node_config(0), args=("--listen", f"[::1]:{port}"), watchdog_usec=None)
    try:
        proc.wait_message("READY=1")
        assert get(f"http://[::1]:{port}/healthz").text == "ok\n"
    finally:
        assert proc.stop() == 0


def test_json_logs_are_one_object_per_line(tmp_path: Path) -> None:
    proc = AgentProcess(tmp_path, node_config(free_port()), args=("--log-format", "json"), watchdog_usec=None)
    proc.wait_message("READY=1")
    proc.stop()
    lines = [json.loads(line) for line in proc.stderr().splitlines()]
    assert lines and all({"ts", "level", "logger", "msg"} <= set(entry) for entry in lines)
    assert any("serving on" in entry["msg"] for entry in lines)


def test_a_taken_port_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = AgentProcess(tmp_path, node_config(port), watchdog_usec=None)
        # 78, not 1: another program holds the port, and systemd restarting the agent cannot change that
        # (RestartPreventExitStatus=78; docs/operations.md).
        assert proc.proc.wait(10) == 78
        proc.stop()
    assert f"config error: agent.listen: cannot listen on 127.0.0.1:{port}: Address already in use" in (
        proc.stderr()
    )
    assert "Traceback" not in proc.stderr()


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _make_pki(d: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA."""
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        str(d / "ca.key"),
        "-out",
        str(d / "ca.crt"),
    )
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        _openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            f"/CN={name}",
            "-keyout",
            str(d / f"{name}.key"),
            "-out",
            str(d / f"{name}.csr"),
        )
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl(
            "x509",
            "-req",
            "-in",
            str(d / f"{name}.csr"),
            "-CA",
            str(d / "ca.crt"),
            "-CAkey",
            str(d / "ca.key"),
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            str(d / f"{name}.ext"),
            "-out",
            str(d / f"{name}.crt"),
        )


def test_tls_with_client_certificates_admits_only_signed_clients(tmp_path: Path) -> None:
    _make_pki(tmp_path)
    port = free_port()
    tls = {
        "cert_file": str(tmp_path / "server.crt"),
        "key_file": str(tmp_path / "server.key"),
        "client_ca_file": str(tmp_path / "ca.crt"),
    }
    proc = AgentProcess(tmp_path, node_config(port, tls=tls), watchdog_usec=None)
    try:
        proc.wait_message("READY=1")
        url = f"https://127.0.0.1:{port}/metrics"
        ok = get(
            url,
            verify=str(tmp_path / "ca.crt"),
            cert=(str(tmp_path / "client.crt"), str(tmp_path / "client.key")),
        )
        assert ok.status_code == 200 and "gpuwarden_build_info" in ok.text
        with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError, ssl.SSLError)):
            get(url, verify=str(tmp_path / "ca.crt"))
        # The agent survives a client that failed the handshake.
        assert (
            get(
                url,
                verify=str(tmp_path / "ca.crt"),
                cert=(str(tmp_path / "client.crt"), str(tmp_path / "client.key")),
            ).status_code
            == 200
        )
    finally:
        assert proc.stop() == 0
