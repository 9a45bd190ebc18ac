"""A remediation engine in a process of its own, for the crash test: it restarts a supervised program
over and over (manual requests, one after the other) until it is killed.

    python -m tests.integration.remediation_driver STATE_DIR
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from gpuwarden.remediations.audit import read
from gpuwarden.remediations.engine import Engine
from gpuwarden.remediations.request import Request
from gpuwarden.remediations.section import RemediationSettings

# Takes 0.3 s to stop, so that a kill lands inside a run often.
SLOW_TO_STOP = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *a: (time.sleep(0.3), sys.exit(0)))\n"
    "time.sleep(3600)\n"
)


def settings(state: Path) -> RemediationSettings:
    return RemediationSettings.model_validate(
        {
            "enabled": True,
            "audit_log": str(state / "audit.jsonl"),
            "startup_grace_s": 0,
            "storm": {"max_runs": 1_000_000},  # a hundred restarts in a row are the point here
            "targets": {
                "worker": {
                    "kind": "process",
                    "argv": [sys.executable, "-c", SLOW_TO_STOP],
                    "pid_file": str(state / "worker.pid"),
                    "stop_timeout_s": 5,
                }
            },
            "playbooks": {
                "worker_restart": {
                    "enabled": True,
                    "rails": {"max_attempts": 100_000, "grace_s": 0, "cooldown_s": 0, "backoff_initial_s": 0},
                }
            },
        }
    )


def main(state: Path) -> None:
    engine = Engine(settings(state)).start()
    print("started", flush=True)
    while True:
        request = Request("worker_restart", "manual", "user:crash-test", "restart again")
        engine.submit(request)
        while not any(r["run"] == request.run_id and r["step"] == "outcome" for r in read(engine.audit.path)):
            time.sleep(0.02)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
