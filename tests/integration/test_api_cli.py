"""The on-call CLI (real processes) against a running agent that supervises the reference worker."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.agent_process import AgentProcess, free_port
from tests.integration.api_support import TOKEN, agent_config, start_agent, token_file
from tests.integration.remediation_support import Worker, fast_rails, wait_for

pytestmark = pytest.mark.integration


class OnCall:
    def __init__(self, url: str, tokens: Path) -> None:
        self.url, self.tokens = url, tokens

    def __call__(
        self, *args: str, agent: str | None = None, tokens: Path | None = None
    ) -> tuple[int, str, str]:
        where = ["--agent", agent or self.url, "--token-file", str(tokens or self.tokens)]
        done = subprocess.run(
            [sys.executable, "-m", "gpuwarden", *args, *where], capture_output=True, text=True, timeout=120
        )
        return done.returncode, done.stdout, done.stderr


@pytest.fixture(scope="module")
def oncall(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OnCall, Worker]]:
    tmp = tmp_path_factory.mktemp("oncall")
    worker = Worker(tmp)
    worker.env_file.write_text("GPUWARDEN_MEMORY_FRACTION=0.9\n")
    remediation = {
        "targets": {"worker": worker.target()},
        "playbooks": {
            "worker_restart": {"enabled": True, "rails": fast_rails()},
            "memory_fraction": {"enabled": True, "rails": fast_rails()},
        },
    }
    agent, url = start_agent(tmp, agent_config(tmp, "gpu-node-1", remediation))
    try:
        wait_for(lambda: worker.infer() == 200, timeout=60, what="the supervised worker serves")
        yield OnCall(url, Path(tmp / "api-tokens")), worker
    finally:
        agent.stop()


def test_a_dry_run_prints_the_plan_and_changes_nothing(oncall: tuple[OnCall, Worker]) -> None:
    run, worker = oncall
    code, out, err = run("remediate", "memory_fraction", "--reason", "OOM on gpu 3", "--dry-run")
    assert code == 0, err
    assert "dry run" in out and "dry_run" in out
    assert "GPUWARDEN_MEMORY_FRACTION=0.8" in out  # the persist step, exactly as it would be applied
    assert "stop" in out and "ready" in out
    assert worker.env_file.read_text() == "GPUWARDEN_MEMORY_FRACTION=0.9\n"


def test_a_real_restart_succeeds_and_is_listed_with_the_operator_and_reason(
    oncall: tuple[OnCall, Worker],
) -> None:
    run, worker = oncall
    code, out, err = run("remediate", "worker_restart", "--reason", "hung after driver reset")
    assert code == 0, err + out
    assert "succeeded" in out
    assert worker.infer() == 200
    code, out, _ = run("runs", "--json")
    listed = json.loads(out)["runs"]
    restart = next(r for r in listed if r["playbook"] == "worker_restart")
    assert restart["actor"] == "user:oncall" and restart["reason"] == "hung after driver reset"
    code, table, _ = run("runs")
    assert code == 0 and table.splitlines()[0].split()[:3] == ["STARTED", "RUN", "PLAYBOOK"]
    assert restart["run"] in table
    code, detail, _ = run("run", restart["run"])
    assert code == 0 and "succeeded" in detail and "asked by user:oncall" in detail


def test_pause_refuses_runs_until_resume(oncall: tuple[OnCall, Worker]) -> None:
    run, _ = oncall
    code, out, _ = run("pause", "--reason", "maintenance", "--playbook", "worker_restart")
    assert code == 0 and out.startswith("paused worker_restart")
    code, out, err = run("remediate", "worker_restart", "--reason", "x", "--dry-run")
    assert code == 1 and out == ""
    assert err == "gpuwarden: worker_restart is paused: maintenance (HTTP 409)\n"
    code, out, _ = run("resume", "--reason", "done", "--playbook", "worker_restart")
    assert code == 0 and out.startswith("resumed worker_restart")
    assert run("remediate", "worker_restart", "--reason", "x", "--dry-run")[0] == 0


def test_errors_are_one_line_and_a_non_zero_exit(oncall: tuple[OnCall, Worker], tmp_path: Path) -> None:
    run, _ = oncall
    down = f"http://127.0.0.1:{free_port()}"
    bad = token_file(tmp_path, "intruder:ffffffffffffffffffffffffffffffff\n")
    cases = [
        (run("runs", agent=down), 69, f"gpuwarden: cannot reach the agent at {down}: connection refused\n"),
        (run("runs", tokens=bad), 77, "gpuwarden: missing or wrong bearer token (HTTP 401)\n"),
        (
            run("remediate", "reboot_node", "--reason", "x"),
            1,
            "gpuwarden: playbook reboot_node is unknown (enabled here: memory_fraction, worker_restart) "
            "(HTTP 404)\n",
        ),
        (run("run", "0123456789ab"), 1, "gpuwarden: no run 0123456789ab in the audit log (HTTP 404)\n"),
        (
            run("reset", "--reason", "x", "--playbook", "worker_restart"),
            1,
            "gpuwarden: worker_restart is not exhausted: nothing to reset (HTTP 409)\n",
        ),
    ]
    for (code, out, err), want_code, want_err in cases:
        assert (code, out, err) == (want_code, "", want_err)


def test_the_agent_refuses_to_start_on_a_token_file_others_can_read(tmp_path: Path) -> None:
    config = agent_config(tmp_path, "gpu-node-1", None)
    token_file(tmp_path, f"{TOKEN}\n", mode=0o644)
    agent = AgentProcess(tmp_path, config, watchdog_usec=None)
    assert agent.proc.wait(30) == 78
    err = agent.stderr()
    assert "api.token_file:" in err and "mode 0644" in err and "Traceback" not in err
    agent.stop()
