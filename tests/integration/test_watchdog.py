"""The systemd watchdog is fed only while collections render: when no collection can complete, the pings
stop (systemd then restarts the agent); one hung collector among working ones does not stop them."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.agent_process import AgentProcess, free_port, only_collectors

pytestmark = pytest.mark.integration
WATCHDOG_USEC = 400_000  # WatchdogSec=0.4s: the agent pings every 0.2 s


def messages_during(proc: AgentProcess, seconds: float) -> list[str]:
    """The sd_notify datagrams the agent sends in the next `seconds`."""
    seen: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(TimeoutError):
            seen.append(proc.notify.recv(4096).decode())
    return seen


@pytest.fixture
def agents() -> Iterator[list[AgentProcess]]:
    procs: list[AgentProcess] = []
    yield procs
    for proc in procs:
        proc.stop()


def start(tmp: Path, collectors: dict[str, dict[str, Any]], agents: list[AgentProcess]) -> AgentProcess:
    config = {"agent": {"listen": f"127.0.0.1:{free_port()}"}, "collectors": only_collectors(collectors)}
    proc = AgentProcess(tmp, config, watchdog_usec=WATCHDOG_USEC, module="tests.integration.stuck_agent")
    agents.append(proc)
    proc.wait_message("READY=1")
    return proc


def test_the_pings_stop_when_no_collection_renders_any_more(
    tmp_path: Path, agents: list[AgentProcess]
) -> None:
    # The only collector answers once (READY), then every run hangs until its 60 s deadline: nothing renders.
    proc = start(tmp_path, {"stuck": {"interval": 0.2, "timeout": 60}}, agents)
    settled = messages_during(proc, 2.0)
    assert any("STATUS=wedged: no collection rendered" in m for m in proc.messages + settled)
    later = messages_during(proc, 2.0)
    assert not any("WATCHDOG=1" in m for m in later), later
    assert proc.proc.poll() is None  # the agent lives on; restarting it is systemd's decision


def test_one_hung_collector_among_working_ones_keeps_the_watchdog_fed(
    tmp_path: Path, agents: list[AgentProcess]
) -> None:
    collectors = {"stuck": {"interval": 0.2, "timeout": 60}, "node": {"interval": 0.2, "disk_paths": ["/"]}}
    proc = start(tmp_path, collectors, agents)
    messages_during(proc, 1.0)  # past the stuck collector's hang
    later = messages_during(proc, 2.0)
    assert sum("WATCHDOG=1" in m for m in later) >= 5, later
    assert not any("wedged" in m for m in later)
