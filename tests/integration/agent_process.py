"""Run the real agent as a subprocess, with a real sd_notify datagram socket, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests
import yaml

from gpuwarden.demo.configs import collectors as only_collectors  # the demo builds its section the same way

__all__ = ["AgentProcess", "free_port", "get", "only_collectors"]


def free_port(family: int = socket.AF_INET, host: str = "127.0.0.1") -> int:
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class AgentProcess:
    def __init__(
        self,
        tmp: Path,
        config: dict[str, Any],
        args: tuple[str, ...] = (),
        watchdog_usec: int | None = 400_000,
        module: str = "gpuwarden",
    ) -> None:
        self.tmp = tmp
        self.config_path = tmp / "agent.yaml"
        self.write_config(config)
        self.notify_path = tmp / "notify.sock"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(self.notify_path))
        self.notify.settimeout(0.2)
        env = {**os.environ, "NOTIFY_SOCKET": str(self.notify_path), "PYTHONUNBUFFERED": "1"}
        if watchdog_usec:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        self.stderr_path = tmp / "agent.stderr"
        self._stderr = open(self.stderr_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, "agent", "--config", str(self.config_path), *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )
        self.messages: list[str] = []

    def write_config(self, config: dict[str, Any]) -> None:
        self.config_path.write_text(yaml.safe_dump(config))

    def wait_message(self, wanted: str, timeout: float = 15.0) -> list[str]:
        """Collect sd_notify datagrams until one contains `wanted`; returns all received so far."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(wanted in m for m in self.messages):
                return self.messages
            try:
                self.messages.append(self.notify.recv(4096).decode())
            except TimeoutError:
                if self.proc.poll() is not None:
                    raise AssertionError(
                        f"agent exited with {self.proc.returncode}: {self.stderr()}"
                    ) from None
        raise AssertionError(f"no sd_notify message with {wanted!r}; got {self.messages}; {self.stderr()}")

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.notify.close()
        self._stderr.close()
        return self.proc.returncode


def get(url: str, **kwargs: Any) -> requests.Response:
    return requests.get(url, timeout=5, **kwargs)
