"""Stops, reloads and logs of the real agent while clients and collectors misbehave.

SIGTERM exits within 5 s whatever a client or a collector is doing; reloads with a stuck collector do not
add threads; with `log_format: json` every line is JSON and client resets are counted, not logged.
"""

from __future__ import annotations

import json
import signal
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.agent_process import AgentProcess, free_port, get, only_collectors

pytestmark = pytest.mark.integration


def config(port: int, stuck: bool = False, **agent: Any) -> dict[str, Any]:
    collectors = only_collectors({"node": {"interval": 0.5, "disk_paths": ["/"]}})
    # `stuck` is registered in the agent's process only (tests/integration/stuck_agent.py). Its deadline is
    # long enough that the runner's wait outlives a stop without the exit deadline.
    collectors["stuck"] = {"enabled": stuck, "interval": 0.2, "timeout": 60}
    return {"agent": {"listen": f"127.0.0.1:{port}", **agent}, "collectors": collectors}


def start(tmp: Path, cfg: dict[str, Any]) -> AgentProcess:
    proc = AgentProcess(tmp, cfg, watchdog_usec=None, module="tests.integration.stuck_agent")
    proc.wait_message("READY=1")
    return proc


@pytest.fixture
def stopped(tmp_path: Path) -> Iterator[list[AgentProcess]]:
    procs: list[AgentProcess] = []
    yield procs
    for proc in procs:
        proc.stop()


def stop_seconds(proc: AgentProcess) -> float:
    start = time.monotonic()
    proc.signal(signal.SIGTERM)
    assert proc.proc.wait(10) == 0
    return time.monotonic() - start


def threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads: line")


def test_sigterm_exits_within_five_seconds_during_a_trickling_client(
    tmp_path: Path, stopped: list[AgentProcess]
) -> None:
    port = free_port()
    proc = start(tmp_path, config(port))
    stopped.append(proc)
    trickle = socket.create_connection(("127.0.0.1", port))
    done = threading.Event()

    def drip() -> None:
        try:
            trickle.sendall(b"POST /metrics HTTP/1.1\r\nContent-Length: 100000\r\n\r\n")
            while not done.wait(0.05):
                trickle.sendall(b"x")
        except OSError:
            pass

    threading.Thread(target=drip, daemon=True).start()
    time.sleep(0.5)
    assert stop_seconds(proc) < 5
    done.set()
    trickle.close()


def test_sigterm_exits_within_five_seconds_during_a_trickling_inference_scrape(
    tmp_path: Path, stopped: list[AgentProcess]
) -> None:
    """An inference server that answers one byte every 0.1 s, forever: each read is within the read
    timeout, and the collector's deadline (60 s) is far away."""
    target = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def trickle() -> None:
        first = True  # answered at once, so the first collection (and READY) does not wait 60 s
        while not done.is_set():
            try:
                conn, _ = target.accept()
            except OSError:
                return
            with conn:
                try:
                    conn.recv(65536)
                    if first:
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        first = False
                        continue
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
                    while not done.wait(0.1):
                        conn.sendall(b"#")
                except OSError:
                    pass

    threading.Thread(target=trickle, daemon=True).start()
    port = free_port()
    cfg = config(port)
    url = f"http://127.0.0.1:{target.getsockname()[1]}/metrics"
    cfg["collectors"]["inference"] = {"enabled": True, "url": url, "interval": 0.5, "timeout": 60}
    proc = AgentProcess(tmp_path, cfg, watchdog_usec=None, module="tests.integration.stuck_agent")
    stopped.append(proc)
    try:
        proc.wait_message("READY=1")
        time.sleep(1.0)  # the second one is trickling now
        assert stop_seconds(proc) < 5
    finally:
        done.set()
        target.close()


def test_sigterm_exits_within_five_seconds_right_after_2000_slow_connections(
    tmp_path: Path, stopped: list[AgentProcess]
) -> None:
    port = free_port()
    proc = start(tmp_path, config(port))
    stopped.append(proc)
    slow = []
    for _ in range(2000):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # a head that never ends
        slow.append(s)
    for s in slow:
        s.close()
    assert stop_seconds(proc) < 5


def test_sigterm_exits_within_five_seconds_with_a_stuck_collector(
    tmp_path: Path, stopped: list[AgentProcess]
) -> None:
    proc = start(tmp_path, config(free_port(), stuck=True))
    stopped.append(proc)
    time.sleep(1.0)  # the second call is stuck; the runner waits on it for up to 60 s
    assert stop_seconds(proc) < 5


def test_ten_reloads_with_a_stuck_collector_leave_the_thread_count_flat(
    tmp_path: Path, stopped: list[AgentProcess]
) -> None:
    port = free_port()
    proc = start(tmp_path, config(port, stuck=True))
    stopped.append(proc)

    def reload(times: int) -> None:
        for _ in range(times):
            seen = sum("configuration reloaded" in m for m in proc.messages)
            proc.signal(signal.SIGHUP)
            deadline = time.monotonic() + 15
            while sum("configuration reloaded" in m for m in proc.messages) == seen:
                if time.monotonic() > deadline:
                    proc.signal(signal.SIGUSR1)
                    time.sleep(0.5)
                    raise AssertionError(proc.stderr())
                proc.messages.extend(_recv(proc))

    time.sleep(1.0)  # the collector's second call is stuck
    reload(1)
    time.sleep(0.5)
    before = threads(proc.proc.pid)
    reload(10)
    time.sleep(0.5)
    assert threads(proc.proc.pid) <= before + 1  # + the node collection in flight at either count, if any
    assert 'gpuwarden_collector_success{collector="node"} 1.0' in get(f"http://127.0.0.1:{port}/metrics").text


def _recv(proc: AgentProcess) -> list[str]:
    try:
        return [proc.notify.recv(4096).decode()]
    except TimeoutError:
        return []


def test_with_json_logs_client_resets_are_counted_and_every_line_is_json(
    tmp_path: Path, stopped: list[AgentProcess]
) -> None:
    port = free_port()
    proc = start(tmp_path, config(port, log_format="json"))
    stopped.append(proc)
    for i in range(200):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n" if i % 2 else b"GET /metrics HTTP/1.1\r\n\r\n")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
        s.close()
    time.sleep(1.0)
    text = get(f"http://127.0.0.1:{port}/metrics").text
    resets = next(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith('gpuwarden_http_client_errors_total{reason="reset"}')
    )
    assert resets >= 50
    assert stop_seconds(proc) < 5
    lines = proc.stderr().splitlines()
    assert lines and all(json.loads(line)["msg"] for line in lines)
    assert len(lines) < 20  # a line per start and stop, none per client


def test_a_reload_onto_a_taken_port_keeps_serving_on_the_old_one(
    tmp_path: Path, stopped: list[AgentProcess]
) -> None:
    port = free_port()
    proc = start(tmp_path, config(port))
    stopped.append(proc)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        proc.write_config(config(taken.getsockname()[1]))
        proc.signal(signal.SIGHUP)
        proc.wait_message("STATUS=reload failed")
    assert get(f"http://127.0.0.1:{port}/healthz").text == "ok\n"
    assert "agent.listen: cannot listen on 127.0.0.1:" in proc.stderr()
    assert proc.proc.poll() is None
