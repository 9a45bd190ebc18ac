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

import tests.integration.stuck_agent  # noqa: F401  (registers `stuck` here too, for only_collectors)
from tests.integration.agent_process import AgentProcess, free_port, get, only_collectors

pytestmark = pytest.mark.integration


def config(port: int, stuck: bool = False, **agent: Any) -> dict[str, Any]:
    collectors: dict[str, dict[str, Any]] = {"node": {"interval": 0.5, "disk_paths": ["/"]}}
    if stuck:  # a deadline long enough that the runner's wait outlives a stop without the exit deadline
        collectors["stuck"] = {"interval": 0.2, "timeout": 60}
    return {"agent": {"listen": f"127.0.0.1:{port}", **agent}, "collectors": only_collectors(collectors)}


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
                assert time.monotonic() < deadline, proc.stderr()
                proc.messages.extend(_recv(proc))

    time.sleep(1.0)  # the collector's second call is stuck
    reload(1)
    time.sleep(0.5)
    before = threads(proc.proc.pid)
    reload(10)
    time.sleep(0.5)
    assert threads(proc.proc.pid) <= before
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
