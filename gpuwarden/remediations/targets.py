"""Where the worker really runs: a process the agent supervises, a systemd unit, or an HTTP hook.

Playbooks speak to a `Target` only: stop, start, ready, persist an override, read the log tail. No shell
is ever involved: commands are argv lists, and no text from a trigger reaches them. Overrides (memory
fraction, `CUDA_VISIBLE_DEVICES`) live in a KEY=VALUE file written atomically, which the supervised
process reads on start (`${VAR}` in its argv) and a systemd unit reads through `EnvironmentFile=`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections import deque
from pathlib import Path
from typing import Protocol

from gpuwarden.remediations.settings import (
    HttpTargetSettings,
    ProcessTargetSettings,
    SystemdTargetSettings,
    TargetSettings,
)

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class TargetError(Exception):
    """An action on the target failed; the message is what the audit log records."""


def read_env(path: str | None) -> dict[str, str]:
    if not path or not os.path.exists(path):
        return {}
    env = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            env[key] = value
    return env


def write_env(path: str, updates: dict[str, str | None]) -> None:
    """Set (or with None, remove) keys of a KEY=VALUE file atomically: a crash leaves old or new."""
    env = read_env(path)
    for key, value in updates.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    write_atomic(path, "".join(f"{k}={v}\n" for k, v in sorted(env.items())))


def write_atomic(path: str, text: str) -> None:
    """Write, fsync, rename: a crash leaves the old file or the new one, never half of one."""
    tmp = f"{path}.tmp"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# A hook or readiness URL answers a status, not a document: a larger body is a misbehaving endpoint.
HOOK_MAX_BODY = 1 << 20


def http_ready(url: str | None, timeout: float) -> bool:
    if url is None:
        return True
    # Imported when used: http.client imports ssl, and the config imports this module (bench/footprint.py).
    from gpuwarden import httpread
    from gpuwarden.httpread import Limits

    try:
        return httpread.request("GET", url, Limits(timeout, HOOK_MAX_BODY)).status == 200
    except httpread.ReadError:
        return False


def tail(path: str | None, lines: int = 50) -> list[str]:
    if not path or not os.path.exists(path):
        return []
    with open(path, encoding="utf-8", errors="replace") as f:
        return [line.rstrip("\n") for line in deque(f, maxlen=lines)]


class Target(Protocol):
    name: str
    env_file: str | None
    log_file: str | None

    def stop(self) -> None: ...

    def start(self) -> None: ...

    def ready(self, timeout: float = 2.0) -> bool: ...

    def alive(self) -> bool: ...

    def log_tail(self, lines: int = 50) -> list[str]: ...

    def signal(self, sig: signal.Signals) -> None: ...


class ProcessTarget:
    """The agent is the supervisor: it starts the process in its own process group and stops the group."""

    def __init__(self, name: str, settings: ProcessTargetSettings) -> None:
        self.name = name
        self.settings = settings
        self.env_file = settings.env_file
        self.log_file = settings.log_file
        self.proc: subprocess.Popen[bytes] | None = None
        self.expected_exit = False  # the engine stopped it (not a crash)

    def argv(self) -> list[str]:
        env = read_env(self.env_file)

        def expand(match: re.Match[str]) -> str:
            if match.group(1) not in env:
                raise TargetError(f"{match.group(0)} in argv is not set in {self.env_file}")
            return env[match.group(1)]

        return [_VAR.sub(expand, arg) for arg in self.settings.argv]

    def start(self) -> None:
        if self.alive():
            return
        self._stop_orphan()
        env = {**os.environ, **read_env(self.env_file)}
        out = open(self.settings.log_file, "ab") if self.settings.log_file else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.proc = subprocess.Popen(
                self.argv(), env=env, stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True
            )
        except OSError as err:
            raise TargetError(f"cannot start {self.settings.argv[0]}: {err.strerror}") from None
        finally:
            if out is not subprocess.DEVNULL:
                out.close()  # type: ignore[union-attr]
        self.expected_exit = False
        if self.settings.pid_file:
            write_atomic(self.settings.pid_file, f"{self.proc.pid}\n")

    def _stop_orphan(self) -> None:
        """A previous agent (killed, crashed) left its child running: two workers would fight over the
        port and the GPU, so the new supervisor stops the old group before starting its own."""
        path = self.settings.pid_file
        if not path or not os.path.exists(path):
            return
        text = Path(path).read_text(encoding="utf-8").strip()
        if not text.isdigit():
            return
        pid = int(text)
        try:
            if os.getsid(pid) != pid:
                return  # our child leads its own session; this pid was reused by something else
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return  # gone already, or not ours
        deadline = time.monotonic() + 5
        with contextlib.suppress(ProcessLookupError):
            while time.monotonic() < deadline:
                os.kill(pid, 0)  # until init has reaped it
                time.sleep(0.05)

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        self.expected_exit = True
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(self.settings.stop_timeout_s)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)  # a hung worker ignores SIGTERM: kill it and its children
            proc.wait(5)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        """To the main process only (it owns the log file; its children may not handle the signal)."""
        if not self.alive():
            raise TargetError(f"{self.name} is not running")
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, sig)

    def crashed(self) -> bool:
        """Exited without the engine asking (the `exit` trigger)."""
        return self.proc is not None and self.proc.poll() is not None and not self.expected_exit

    def ready(self, timeout: float = 2.0) -> bool:
        return self.alive() and http_ready(self.settings.ready_url, timeout)

    def log_tail(self, lines: int = 50) -> list[str]:
        return tail(self.settings.log_file, lines)


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


class SystemdTarget:
    """`systemctl stop|start UNIT` as the agent's user; polkit allows exactly the listed units."""

    def __init__(self, name: str, settings: SystemdTargetSettings) -> None:
        self.name = name
        self.settings = settings
        self.env_file = settings.env_file
        self.log_file = settings.log_file

    def _systemctl(self, verb: str, timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
        argv = [self.settings.systemctl, verb, self.settings.unit]
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise TargetError(f"systemctl {verb} {self.settings.unit}: {err}") from None

    def _must(self, verb: str) -> None:
        done = self._systemctl(verb)
        if done.returncode != 0:
            why = done.stderr.strip() or f"exit {done.returncode}"
            raise TargetError(f"systemctl {verb} {self.settings.unit}: {why}")

    def stop(self) -> None:
        self._must("stop")

    def start(self) -> None:
        self._must("start")

    def alive(self) -> bool:
        return self._systemctl("is-active", timeout=10).returncode == 0

    def signal(self, sig: signal.Signals) -> None:
        """`systemctl kill --kill-whom=main --signal=HUP UNIT`: polkit's manage-units covers it."""
        argv = [
            self.settings.systemctl,
            "kill",
            "--kill-whom=main",
            f"--signal={sig.name}",
            self.settings.unit,
        ]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise TargetError(f"systemctl kill {self.settings.unit}: {err}") from None
        if done.returncode != 0:
            raise TargetError(
                f"systemctl kill {self.settings.unit}: {done.stderr.strip() or done.returncode}"
            )

    def ready(self, timeout: float = 2.0) -> bool:
        return self.alive() and http_ready(self.settings.ready_url, timeout)

    def log_tail(self, lines: int = 50) -> list[str]:
        return tail(self.settings.log_file, lines)


class HttpTarget:
    """A hook: stop/start become POSTs; whoever answers the hook does the work."""

    def __init__(self, name: str, settings: HttpTargetSettings) -> None:
        self.name = name
        self.settings = settings
        self.env_file = settings.env_file
        self.log_file = settings.log_file

    def _post(self, action: str, **extra: str) -> None:
        headers = {}
        if self.settings.token_file:
            token = Path(self.settings.token_file).read_text(encoding="utf-8").strip()
            headers["Authorization"] = f"Bearer {token}"
        headers["Content-Type"] = "application/json"
        body = json.dumps({"action": action, "target": self.name, **extra}).encode()
        from gpuwarden import httpread  # when used (see http_ready)
        from gpuwarden.httpread import Limits

        try:
            reply = httpread.request(
                "POST", self.settings.url, Limits(30, HOOK_MAX_BODY), headers=headers, body=body
            )
        except httpread.ReadError as err:
            raise TargetError(f"hook {action}: {err.kind}: {err.detail}") from None
        if reply.status >= 300:
            raise TargetError(f"hook {action}: HTTP {reply.status}")

    def stop(self) -> None:
        self._post("stop")

    def start(self) -> None:
        self._post("start")

    def alive(self) -> bool:
        return True  # the hook's owner knows; readiness is what the engine checks

    def signal(self, sig: signal.Signals) -> None:
        self._post("signal", signal=sig.name)

    def ready(self, timeout: float = 2.0) -> bool:
        return http_ready(self.settings.ready_url, timeout)

    def log_tail(self, lines: int = 50) -> list[str]:
        return tail(self.settings.log_file, lines)


def build_target(name: str, settings: TargetSettings) -> Target:
    if isinstance(settings, ProcessTargetSettings):
        return ProcessTarget(name, settings)
    if isinstance(settings, SystemdTargetSettings):
        return SystemdTarget(name, settings)
    return HttpTarget(name, settings)


def wait_ready(target: Target, timeout: float) -> None:
    """Poll readiness until `timeout`; TargetError when it never came (the restart did not help)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if target.ready(timeout=min(2.0, max(0.1, deadline - time.monotonic()))):
            return
        time.sleep(0.1)
    raise TargetError(f"{target.name} not ready within {timeout:g}s")
