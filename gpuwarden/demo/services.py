"""The demo's processes: each in its own process group with its output in a log file, stopped together.

`Services.stop_all()` runs from a `finally:` and from the Ctrl-C handler alike: SIGTERM to every group,
then SIGKILL to what is left after a grace period, so nothing the demo started outlives it. The worker is
started by the agent (the agent is its supervisor); its pid file lets the demo stop it too if the agent
could not.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests


class ServiceError(Exception):
    """A service did not start; the message names it and points at its log."""


@dataclass
class Service:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path


def binary(*names: str) -> str:
    """The first of `names` on PATH (Debian names Alertmanager `prometheus-alertmanager`)."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise ServiceError(f"{names[0]} is not installed: `make deps-debian` installs Debian's packages")


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class Services:
    logs: Path
    started: list[Service] = field(default_factory=list)
    pid_files: list[Path] = field(default_factory=list)  # processes others started for us (the worker)

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Service:
        log = self.logs / f"{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                start_new_session=True,  # Ctrl-C on the terminal reaches the demo only; it stops these
            )
        service = Service(name, proc, log)
        self.started.append(service)
        return service

    def wait_http(self, service: Service, url: str, timeout: float, ok: Callable[[int], bool]) -> None:
        """Poll `url` until `ok(status)`; fail with the service's log tail if it exits or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if service.proc.poll() is not None:
                raise ServiceError(
                    f"{service.name} exited with {service.proc.returncode}; {service.log}:\n"
                    + log_tail(service.log)
                )
            with contextlib.suppress(requests.RequestException):
                if ok(requests.get(url, timeout=1).status_code):
                    return
            time.sleep(0.2)
        raise ServiceError(f"{service.name} not ready at {url} within {timeout:.0f}s; {service.log}")

    def stop_all(self, grace: float = 10.0) -> None:
        for service in reversed(self.started):
            _signal_group(service.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for service in reversed(self.started):
            with contextlib.suppress(subprocess.TimeoutExpired):
                service.proc.wait(max(0.1, deadline - time.monotonic()))
            if service.proc.poll() is None:
                _signal_group(service.proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    service.proc.wait(5)
        for pid_file in self.pid_files:  # the agent stops its worker; this is for when it could not
            pid = _read_pid(pid_file)
            if pid is not None and _leads_session(pid):  # else the pid was reused by something else
                _signal_group(pid, signal.SIGKILL)
        self.started.clear()


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _leads_session(pid: int) -> bool:
    try:
        return os.getsid(pid) == pid
    except (ProcessLookupError, PermissionError):
        return False


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
