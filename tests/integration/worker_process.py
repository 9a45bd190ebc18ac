"""Start the real reference worker (`python -m gpuwarden.worker`) as a subprocess for a test.

    with WorkerProcess(tmp_path) as worker:
        requests.post(worker.url + "/v2/models/canary/infer", json=...)
        worker.fault("hang", duration_s=5)

The worker listens on port 0 (the kernel picks a free one) and the URL is read from its ready line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import requests

TOKEN = "test-admin-token"
READY_PREFIX = "worker ready on "


class WorkerProcess:
    def __init__(self, tmp: Path, *extra: str, model_dir: Path | None = None) -> None:
        self.tmp = tmp
        self.model_dir = model_dir or tmp / "model"
        self.log_file = tmp / "worker.log"
        token_file = tmp / "admin-token"
        token_file.write_text(TOKEN + "\n")
        self.argv = [
            sys.executable,
            "-m",
            "gpuwarden.worker",
            "--listen",
            "127.0.0.1:0",
            "--model-dir",
            str(self.model_dir),
            "--admin-token-file",
            str(token_file),
            "--log-file",
            str(self.log_file),
            *extra,
        ]
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self, timeout: float = 60.0) -> WorkerProcess:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
        )
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(timeout)
        if not line or not line[0].startswith(READY_PREFIX):
            self.stop()
            raise RuntimeError(f"worker did not become ready: {line!r}, log: {self.log()}")
        self.url = line[0][len(READY_PREFIX) :].strip()
        return self

    def fault(self, kind: str, **fields: Any) -> requests.Response:
        response = requests.post(
            self.url + "/admin/fault",
            json={"fault": kind, **fields},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=5,
        )
        response.raise_for_status()
        return response

    def signal(self, signum: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 10.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def log(self) -> str:
        return self.log_file.read_text() if self.log_file.exists() else ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
