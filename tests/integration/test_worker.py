"""The real reference worker as a subprocess: KServe v2, its golden answer, metrics, faults, bad flags."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.worker_process import WorkerProcess

pytestmark = pytest.mark.integration


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[WorkerProcess]:
    with WorkerProcess(tmp_path) as w:
        yield w


def canary_request(model_dir: Path) -> tuple[dict[str, object], np.ndarray, dict[str, float]]:
    canary = json.loads((model_dir / "canary.json").read_text())
    (tensor,) = canary["inputs"]
    (golden,) = canary["outputs"]
    want = np.array(golden["data"]).reshape(golden["shape"])
    return {"inputs": [tensor]}, want, {"atol": canary["atol"], "rtol": canary["rtol"]}


def infer(worker: WorkerProcess, body: dict[str, object], timeout: float = 5) -> requests.Response:
    return requests.post(worker.url + "/v2/models/canary/infer", json=body, timeout=timeout)


def samples(worker: WorkerProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = requests.get(worker.url + "/metrics", timeout=5).text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


T = TypeVar("T")


def eventually(read: Callable[[], T], done: Callable[[T], bool], within: float = 5.0) -> T:
    """`read()` until `done` holds or `within` seconds pass; the last value either way."""
    deadline = time.monotonic() + within
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.05)
        value = read()
    return value


def http_count(worker: WorkerProcess, status: str) -> float:
    labels = (("handler", "/v2/models/{model}/infer"), ("method", "POST"), ("status", status))
    return samples(worker).get(("http_requests_total", labels), 0.0)


def test_worker_answers_the_canary_with_the_golden_output_computed_by_numpy(worker: WorkerProcess) -> None:
    body, want, tol = canary_request(worker.model_dir)
    assert requests.get(worker.url + "/v2/health/live", timeout=5).status_code == 200
    assert requests.get(worker.url + "/v2/health/ready", timeout=5).json() == {"ready": True}
    meta = requests.get(worker.url + "/v2/models/canary", timeout=5).json()
    assert meta["inputs"][0]["name"] == "input" and meta["outputs"][0]["shape"] == [-1, 4]
    reply = infer(worker, {**body, "id": "probe-1"}).json()
    (out,) = reply["outputs"]
    assert reply["id"] == "probe-1" and out["shape"] == list(want.shape)
    np.testing.assert_allclose(np.array(out["data"]).reshape(out["shape"]), want, **tol)


def test_generated_model_directory_passes_coreutils_sha256sum_check(worker: WorkerProcess) -> None:
    if shutil.which("sha256sum") is None:
        pytest.skip("coreutils sha256sum is not installed")
    result = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"], cwd=worker.model_dir, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "canary.onnx: OK" in result.stdout and "canary.json: OK" in result.stdout


def test_unknown_model_and_malformed_request_get_kserve_errors(worker: WorkerProcess) -> None:
    missing = requests.post(worker.url + "/v2/models/llama/infer", json={}, timeout=5)
    assert missing.status_code == 404 and "canary" in missing.json()["error"]
    bad = infer(
        worker, {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}
    )
    assert bad.status_code == 400 and "[batch, 8]" in bad.json()["error"]
    assert http_count(worker, "4xx") == 2


def test_admin_call_without_the_token_is_refused_and_changes_nothing(worker: WorkerProcess) -> None:
    body, _, _ = canary_request(worker.model_dir)
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        r = requests.post(worker.url + "/admin/fault", json={"fault": "errors"}, headers=headers, timeout=5)
        assert r.status_code == 401
    assert infer(worker, body).status_code == 200


def test_error_fault_fails_inferences_and_logs_cuda_out_of_memory(worker: WorkerProcess) -> None:
    body, _, _ = canary_request(worker.model_dir)
    assert infer(worker, body).status_code == 200
    worker.fault("errors")
    codes = [infer(worker, body).status_code for _ in range(3)]
    assert codes == [500, 500, 500]
    assert worker.log().count("CUDA out of memory") == 3
    m = samples(worker)
    assert m[("vllm:request_success_total", (("model_name", "canary"),))] == 1
    assert m[("vllm:e2e_request_latency_seconds_count", (("model_name", "canary"),))] == 4
    assert http_count(worker, "5xx") == 3 and http_count(worker, "2xx") == 1


def test_error_fault_with_a_duration_ends_by_itself(worker: WorkerProcess) -> None:
    body, _, _ = canary_request(worker.model_dir)
    worker.fault("errors", duration_s=0.5)
    assert infer(worker, body).status_code == 500
    time.sleep(0.7)
    assert infer(worker, body).status_code == 200


def test_latency_fault_slows_requests_and_queues_the_rest(tmp_path: Path) -> None:
    with WorkerProcess(tmp_path, "--max-concurrency", "1") as worker:
        body, _, _ = canary_request(worker.model_dir)
        worker.fault("latency", latency_s=1.0)
        threads = [threading.Thread(target=infer, args=(worker, body)) for _ in range(3)]
        for t in threads:
            t.start()
        running = ("vllm:num_requests_running", (("model_name", "canary"),))
        waiting = ("vllm:num_requests_waiting", (("model_name", "canary"),))
        m = eventually(lambda: samples(worker), lambda m: m[waiting] == 2, within=0.9)
        assert m[running] == 1 and m[waiting] == 2
        for t in threads:
            t.join()
        m = samples(worker)
        slow = m[("vllm:e2e_request_latency_seconds_bucket", (("le", "0.5"), ("model_name", "canary")))]
        assert slow == 0 and m[("vllm:e2e_request_latency_seconds_count", (("model_name", "canary"),))] == 3


def test_hang_fault_blocks_health_and_inference_until_cleared(worker: WorkerProcess) -> None:
    body, _, _ = canary_request(worker.model_dir)
    worker.fault("hang")
    with pytest.raises(requests.Timeout):
        requests.get(worker.url + "/v2/health/ready", timeout=0.5)
    with pytest.raises(requests.Timeout):
        infer(worker, body, timeout=0.5)
    assert requests.get(worker.url + "/metrics", timeout=5).status_code == 200
    worker.fault("none")
    assert infer(worker, body).status_code == 200


def test_wrong_fault_returns_answers_outside_the_golden_tolerance(worker: WorkerProcess) -> None:
    body, want, tol = canary_request(worker.model_dir)
    worker.fault("wrong")
    reply = infer(worker, body)
    assert reply.status_code == 200
    got = np.array(reply.json()["outputs"][0]["data"]).reshape(want.shape)
    assert not np.allclose(got, want, **tol)


def test_crash_fault_ends_the_process_with_the_abort_exit_code(worker: WorkerProcess) -> None:
    worker.fault("crash")
    assert worker.wait() == 134
    with pytest.raises(requests.ConnectionError):
        requests.get(worker.url + "/v2/health/live", timeout=2)


def test_sigusr1_starts_an_error_burst_and_sigusr2_clears_it(worker: WorkerProcess) -> None:
    body, _, _ = canary_request(worker.model_dir)
    worker.signal(signal.SIGUSR1)
    assert eventually(lambda: infer(worker, body).status_code, lambda code: code == 500) == 500
    worker.signal(signal.SIGUSR2)
    assert eventually(lambda: infer(worker, body).status_code, lambda code: code == 200) == 200


def test_memory_fraction_is_reported_as_vllm_cache_config(tmp_path: Path) -> None:
    with WorkerProcess(tmp_path, "--memory-fraction", "0.55") as worker:
        assert samples(worker)[("vllm:cache_config_info", (("gpu_memory_utilization", "0.55"),))] == 1


def run_worker(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "gpuwarden.worker", "--listen", "127.0.0.1:0", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_bad_flags_exit_78_naming_each_flag_without_a_traceback(tmp_path: Path) -> None:
    result = run_worker("--memory-fraction", "1.5", "--admin-token-file", str(tmp_path / "none"))
    assert result.returncode == 78
    assert "--memory-fraction: must be greater than 0" in result.stderr
    assert "--admin-token-file: cannot read" in result.stderr
    assert "Traceback" not in result.stderr


def test_tampered_model_directory_refuses_to_start_with_exit_65(
    worker: WorkerProcess, tmp_path: Path
) -> None:
    worker.stop()
    model = worker.model_dir / "canary.onnx"
    model.write_bytes(model.read_bytes()[:-8] + b"\0" * 8)
    result = run_worker("--model-dir", str(worker.model_dir))
    assert result.returncode == 65
    assert "canary.onnx checksum mismatch" in result.stderr and "Traceback" not in result.stderr


def test_worker_metrics_break_only_promtools_colon_rule_like_vllm(worker: WorkerProcess) -> None:
    assert shutil.which("promtool"), "promtool is missing: `make test` installs Debian's prometheus package"
    text = requests.get(worker.url + "/metrics", timeout=5).content
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True)
    problems = [line for line in (check.stdout + check.stderr).decode().splitlines() if line]
    assert problems and all(line.endswith("metric names should not contain ':'") for line in problems)
