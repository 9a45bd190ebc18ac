"""The engine probe against the real reference worker (a subprocess): healthy, hung, crashed, wrong."""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gpuwarden import modelfiles
from gpuwarden.agent.registry import CollectorContext
from gpuwarden.collectors.engine.catalog import CATALOG
from gpuwarden.collectors.engine.collector import EngineCollector
from gpuwarden.collectors.engine.isolated import IsolatedBackend
from gpuwarden.collectors.engine.settings import EngineSettings
from gpuwarden.health import Action, HealthResult, State
from gpuwarden.paths import Paths
from gpuwarden.worker import model
from tests.golden import exposition, split
from tests.integration.agent_process import AgentProcess, free_port, get, only_collectors
from tests.integration.worker_process import WorkerProcess

pytestmark = pytest.mark.integration
# The torch backend runs here on the CPU build `make test` installs (`device: cpu`; production needs cuda).
TORCH = pytest.param(
    "torch", marks=pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch not installed")
)
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[WorkerProcess]:
    with WorkerProcess(tmp_path) as w:
        yield w


def make(worker: WorkerProcess, backend: str, **overrides: Any) -> EngineCollector:
    settings: dict[str, Any] = {
        "enabled": True,
        "backend": backend,
        "model_dir": str(worker.model_dir),
        "probe_timeout": 0.5,
        "failure_threshold": 2,
        "kernel_latency": "off",
        "http": {"url": worker.url},
        "torch": {"device": "cpu"},
    }
    if backend != "http":
        settings["serving_ready_url"] = worker.url + "/v2/health/ready"
    settings.update(overrides)
    ctx = CollectorContext(Paths(), logging.getLogger("test.engine"))
    return EngineCollector(EngineSettings.model_validate(settings), ctx)


def probe(collector: EngineCollector) -> tuple[Samples, HealthResult]:
    metrics, health = split(collector.collect())
    samples: Samples = {}
    for family in text_string_to_metric_families(exposition(metrics)):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    (result,) = [h for h in health if h.component == "engine.probe"]
    return samples, result


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def failures(samples: Samples, backend: str, reason: str) -> float:
    return value(samples, "gpuwarden_engine_probe_failures_total", backend=backend, reason=reason)


@pytest.mark.parametrize("backend", ["http", "onnxruntime"])
def test_probe_passes_on_a_healthy_worker_and_exports_every_catalog_series(
    worker: WorkerProcess, backend: str
) -> None:
    samples, health = probe(make(worker, backend))
    assert health.state == State.HEALTHY, health.reason
    assert value(samples, "gpuwarden_engine_probe_success", backend=backend) == 1
    assert value(samples, "gpuwarden_engine_probe_max_abs_error", backend=backend) < 1e-5
    assert value(samples, "gpuwarden_engine_probe_latency_seconds", backend=backend) > 0
    kernel_series = {
        "gpuwarden_engine_kernel_launch_latency_seconds",
        "gpuwarden_engine_kernel_launch_host_seconds",
    }
    emitted = {name.removesuffix("_total") for name, _ in samples}
    assert emitted == {spec.name.removesuffix("_total") for spec in CATALOG} - kernel_series


@pytest.mark.parametrize("backend", ["http", "onnxruntime"])
def test_hung_worker_times_out_degraded_then_unhealthy_at_the_threshold(
    worker: WorkerProcess, backend: str
) -> None:
    collector = make(worker, backend)
    worker.fault("hang")
    samples, first = probe(collector)
    assert first.state == State.DEGRADED and "timeout" in first.reason
    samples, second = probe(collector)
    assert second.state == State.UNHEALTHY and second.suggested_action == Action.RESTART_WORKER
    assert "2 probes in a row" in second.reason
    assert failures(samples, backend, "timeout") == 2
    assert value(samples, "gpuwarden_engine_probe_consecutive_failures", backend=backend) == 2
    worker.fault("none")
    samples, healed = probe(collector)
    assert healed.state == State.HEALTHY
    assert value(samples, "gpuwarden_engine_probe_consecutive_failures", backend=backend) == 0


@pytest.mark.parametrize("backend", ["http", "onnxruntime"])
def test_crashed_worker_is_reported_unreachable(worker: WorkerProcess, backend: str) -> None:
    collector = make(worker, backend)
    worker.fault("crash")
    assert worker.wait() == 134
    samples, health = probe(collector)
    assert health.state == State.DEGRADED and "Connection refused" in health.reason
    assert failures(samples, backend, "unreachable") == 1
    assert value(samples, "gpuwarden_engine_probe_success", backend=backend) == 0


def test_http_probe_catches_a_worker_that_answers_wrong_numbers(worker: WorkerProcess) -> None:
    collector = make(worker, "http", failure_threshold=1)
    worker.fault("wrong")
    samples, health = probe(collector)
    assert health.state == State.UNHEALTHY and health.suggested_action == Action.INSPECT_HARDWARE
    assert "differs from the golden output" in health.reason
    # The worker shifts every value by 0.05: the exported error says by how much the engine is off.
    assert value(samples, "gpuwarden_engine_probe_max_abs_error", backend="http") == pytest.approx(
        0.05, abs=1e-4
    )


def test_http_probe_reports_the_engines_own_error_message(worker: WorkerProcess) -> None:
    worker.fault("errors")
    samples, health = probe(make(worker, "http"))
    assert "http_error" in health.reason and "500" in health.reason and "CUDA out of memory" in health.reason
    assert failures(samples, "http", "http_error") == 1


def test_openai_probe_passes_on_the_completion_and_catches_wrong_text(worker: WorkerProcess) -> None:
    collector = make(worker, "http", http={"url": worker.url, "protocol": "openai"})
    samples, health = probe(collector)
    assert health.state == State.HEALTHY, health.reason
    assert value(samples, "gpuwarden_engine_probe_info", backend="http", runtime="openai", version="") == 1
    worker.fault("wrong")
    samples, health = probe(collector)
    assert "wrong_answer" in health.reason and "'gpuwarden canary'" in health.reason
    missing = make(worker, "http", http={"url": worker.url, "protocol": "openai", "model": "llama"})
    assert "is not served" in probe(missing)[1].reason


def regenerate_model_with_other_weights(model_dir: Path) -> None:
    """A bad model push: new weights, checksums updated by the pipeline, the canary's golden kept."""
    golden = (model_dir / modelfiles.CANARY).read_bytes()
    model.generate(str(model_dir), seed=model.DEFAULT_SEED + 1)
    (model_dir / modelfiles.CANARY).write_bytes(golden)
    modelfiles.write_manifest(str(model_dir), [model.MODEL_FILE, model.TORCH_FILE, modelfiles.CANARY])


@pytest.mark.parametrize("in_process", ["onnxruntime", TORCH])
def test_bad_model_push_is_caught_as_wrong_answer_by_both_probes(tmp_path: Path, in_process: str) -> None:
    model_dir = tmp_path / "model"
    model.generate(str(model_dir))
    regenerate_model_with_other_weights(model_dir)
    with WorkerProcess(tmp_path, model_dir=model_dir) as worker:
        for backend in ("http", in_process):
            samples, health = probe(make(worker, backend))
            assert "wrong_answer" in health.reason, (backend, health.reason)
            assert value(samples, "gpuwarden_engine_probe_max_abs_error", backend=backend) > 0.01


def test_tampered_model_is_unhealthy_at_once_and_reloaded_after_a_fixed_redeploy(
    worker: WorkerProcess,
) -> None:
    collector = make(worker, "onnxruntime", failure_threshold=5)
    assert probe(collector)[1].state == State.HEALTHY
    onnx_file = worker.model_dir / model.MODEL_FILE
    good = onnx_file.read_bytes()
    onnx_file.write_bytes(good[:-4] + b"\xff\xff\xff\xff")
    samples, health = probe(collector)
    assert health.state == State.UNHEALTHY and health.suggested_action == Action.REDEPLOY_MODEL
    assert "canary.onnx checksum mismatch" in health.reason
    assert failures(samples, "onnxruntime", "checksum_mismatch") == 1
    onnx_file.write_bytes(good)
    assert probe(collector)[1].state == State.HEALTHY


def test_agent_serves_the_engine_probe_series_and_health(worker: WorkerProcess, tmp_path: Path) -> None:
    port = free_port()
    engine = {"interval": 0.5, "model_dir": str(worker.model_dir), "http": {"url": worker.url}}
    config = {"agent": {"listen": f"127.0.0.1:{port}"}, "collectors": only_collectors({"engine": engine})}
    (tmp_path / "agent").mkdir()
    agent = AgentProcess(tmp_path / "agent", config, watchdog_usec=None)
    try:
        agent.wait_message("READY=1")
        text = get(f"http://127.0.0.1:{port}/metrics").text
        assert 'gpuwarden_engine_probe_success{backend="http"} 1.0' in text
        assert 'gpuwarden_collector_success{collector="engine"} 1.0' in text
        components = {c["component"]: c for c in get(f"http://127.0.0.1:{port}/health").json()["components"]}
        assert components["engine.probe"]["state"] == "HEALTHY"
        if shutil.which("promtool"):
            check = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True)
            assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
    finally:
        agent.stop()


def wait_until_exited(pid: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return
        except FileNotFoundError:
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not exit")


@pytest.mark.parametrize("kind", ["onnxruntime", TORCH])
def test_a_crash_of_the_isolated_probe_process_is_a_failed_probe_not_a_dead_agent(
    worker: WorkerProcess, kind: str
) -> None:
    collector = make(worker, kind)
    assert probe(collector)[1].state == State.HEALTHY
    backend = collector.backend
    assert isinstance(backend, IsolatedBackend) and backend.pid is not None
    pid = backend.pid
    os.kill(pid, signal.SIGSEGV)  # what a TensorRT or CUDA abort on a bad plan looks like
    wait_until_exited(pid)  # died between two probes: still a failed probe, not a silent restart
    samples, health = probe(collector)
    assert health.state == State.DEGRADED and "probe process died (killed by SIGSEGV)" in health.reason
    assert failures(samples, kind, "runtime_error") == 1
    assert probe(collector)[1].state == State.HEALTHY  # a fresh child took over
    collector.close()
    assert backend.pid is None


def test_the_in_process_mode_gives_the_same_verdicts(worker: WorkerProcess) -> None:
    collector = make(worker, "onnxruntime", isolate=False)
    assert probe(collector)[1].state == State.HEALTHY
    worker.fault("hang")
    assert "timeout" in probe(collector)[1].reason
