"""SIGHUP with any file never ends the running agent, and keeps the running config.

The agent here runs with one cheap collector (textfile on an empty directory) so that hundreds of
reloads take seconds; each generated file is one `check-config` rejects (the loader's own fuzz test,
tests/unit/test_config_hostile.py, covers what it accepts).
"""

from __future__ import annotations

import contextlib
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings

from gpuwarden import config
from tests.hostile_yaml import config_bytes
from tests.integration.agent_process import AgentProcess, free_port, get, only_collectors

pytestmark = pytest.mark.integration


def good_config(port: int, textfiles: Path) -> dict[str, Any]:
    return {
        "agent": {"listen": f"127.0.0.1:{port}"},
        "collectors": only_collectors({"textfile": {"interval": 1, "directory": str(textfiles)}}),
    }


class Reloader:
    """The agent, and SIGHUP that waits for the agent's answer (the sd_notify STATUS line) each time."""

    def __init__(self, proc: AgentProcess, url: str) -> None:
        self.proc, self.url = proc, url
        self.answered = 0  # reloads the agent answered

    def reload(self, wanted: str, timeout: float = 10.0) -> None:
        before = sum(wanted in m for m in self.proc.messages)
        self.proc.signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while sum(wanted in m for m in self.proc.messages) == before:
            assert self.proc.proc.poll() is None, f"the agent exited: {self.proc.stderr()[-3000:]}"
            assert time.monotonic() < deadline, f"no {wanted!r} after SIGHUP: {self.proc.messages[-5:]}"
            with contextlib.suppress(TimeoutError):
                self.proc.messages.append(self.proc.notify.recv(4096).decode())
        self.answered += 1


@pytest.fixture(scope="module")
def reloader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reloader]:
    tmp = tmp_path_factory.mktemp("reload")
    (tmp / "textfiles").mkdir()
    port = free_port()
    proc = AgentProcess(tmp, good_config(port, tmp / "textfiles"), watchdog_usec=None)
    proc.wait_message("READY=1")
    yield Reloader(proc, f"http://127.0.0.1:{port}")
    proc.stop()


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=config_bytes)
def test_sighup_with_generated_bad_files_never_ends_the_agent(reloader: Reloader, data: bytes) -> None:
    reloader.proc.config_path.write_bytes(data)
    try:
        config.load(str(reloader.proc.config_path))
    except config.ConfigError:
        pass
    else:
        assume(False)  # a file that validates is a good reload, not this test's subject
    reloader.reload("STATUS=reload failed")


def test_after_the_bad_reloads_the_agent_serves_and_says_so(reloader: Reloader) -> None:
    # Runs after the fuzz above (file order): still the first config's listener and collectors.
    assert reloader.answered >= 300
    text = get(f"{reloader.url}/metrics").text
    assert "gpuwarden_config_last_reload_successful 0.0" in text
    assert 'gpuwarden_collector_success{collector="textfile"} 1.0' in text
    assert "Traceback" not in reloader.proc.stderr()
    good = good_config(int(reloader.url.rsplit(":", 1)[1]), reloader.proc.tmp / "textfiles")
    reloader.proc.write_config(good)
    reloader.reload("STATUS=configuration reloaded")
    assert "gpuwarden_config_last_reload_successful 1.0" in get(f"{reloader.url}/metrics").text


def test_a_reload_onto_a_listen_address_in_use_keeps_the_old_listener(reloader: Reloader) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        config_now = good_config(busy, reloader.proc.tmp / "textfiles")
        reloader.proc.write_config(config_now)
        reloader.reload("STATUS=reload failed")
        assert "gpuwarden_config_last_reload_successful 0.0" in get(f"{reloader.url}/metrics").text
    assert f"config: agent.listen: cannot listen on 127.0.0.1:{busy}: Address already in use" in (
        reloader.proc.stderr()
    )
