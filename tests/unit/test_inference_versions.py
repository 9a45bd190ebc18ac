"""Engine metric names across versions: each profile reads every name a supported version exports.

The pages are the captures beside this file's fixtures (tests/fixtures/inference/), changed only where a
version differs, as its source says: vLLM's V1 metrics design (docs/design/metrics.md: the V0 gauge
`vllm:gpu_cache_usage_perc` became `vllm:kv_cache_usage_perc`); SGLang's metrics collector before
`sglang:num_requests_total` and `sglang:num_aborted_requests_total` were added (python/sglang/srt/
metrics/collector.py, 0.4.x); TGI's router (huggingface/text-generation-inference router/src/server.rs:
`tgi_request_count`, `tgi_request_failure{err}`, the `tgi_request_duration` histogram, `tgi_queue_size`,
`tgi_batch_current_size`, written without `_total` by metrics-exporter-prometheus).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gpuwarden.collectors.inference.exposition import Exposition, wanted_names
from gpuwarden.collectors.inference.profiles import PROFILES, resolve
from gpuwarden.collectors.inference.settings import Mapping, Selector
from gpuwarden.collectors.inference.signals import Figures, derive, observe
from gpuwarden.collectors.inference.window import Window

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "inference"


def figures(pages: list[str], mapping: Mapping, step: float = 15.0) -> Figures:
    selectors = [getattr(mapping, name) for name in Mapping.model_fields]
    names = wanted_names(s for s in selectors if isinstance(s, Selector))
    window = Window(600.0)
    for i, page in enumerate(pages):
        window.add(observe(Exposition.parse(page, names), mapping, i * step))
    return derive(window, mapping)


def page(name: str) -> str:
    return (FIXTURES / f"{name}.prom").read_text()


def test_vllm_v0_and_early_v1_name_the_kv_cache_gauge_gpu_cache_usage_perc() -> None:
    old = [page(f"vllm-{i}").replace("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc") for i in (0, 1)]
    new = figures([page("vllm-0"), page("vllm-1")], PROFILES["vllm"])
    assert figures(old, PROFILES["vllm"]).kv_cache_usage == new.kv_cache_usage is not None


def _without(text: str, *metrics: str) -> str:
    return "\n".join(line for line in text.splitlines() if not any(m in line for m in metrics)) + "\n"


def test_sglang_without_a_request_counter_still_gives_qps_from_the_latency_histogram() -> None:
    old = [
        _without(page(f"sglang-{i}"), "sglang:num_requests_total", "sglang:num_aborted_requests_total")
        for i in (0, 1)
    ]
    new = figures([page("sglang-0"), page("sglang-1")], PROFILES["sglang"])
    f = figures(old, PROFILES["sglang"])
    assert f.qps == new.qps == pytest.approx(240 / 15)
    assert f.error_ratio is None  # no failure counter in that version: no ratio, not a ratio of 0
    assert new.error_ratio == pytest.approx(6 / 240)


def tgi_page(count: int, failures: dict[str, int], durations: list[float], queue: int) -> str:
    """A TGI /metrics page: the router's names, in the Rust exporter's format (counters without _total)."""
    bounds = [0.1, 0.5, 1.0, 5.0, 10.0]
    lines = [
        "# TYPE tgi_request_count counter",
        f"tgi_request_count {count}",
        "# TYPE tgi_request_failure counter",
    ]
    lines += [f'tgi_request_failure{{err="{err}"}} {n}' for err, n in failures.items()]
    lines += ["# TYPE tgi_request_duration histogram"]
    lines += [f'tgi_request_duration_bucket{{le="{b}"}} {sum(d <= b for d in durations)}' for b in bounds]
    lines += [f'tgi_request_duration_bucket{{le="+Inf"}} {len(durations)}']
    lines += [f"tgi_request_duration_sum {sum(durations)}", f"tgi_request_duration_count {len(durations)}"]
    lines += ["# TYPE tgi_queue_size gauge", f"tgi_queue_size {queue}", "# TYPE tgi_batch_current_size gauge"]
    return "\n".join([*lines, "tgi_batch_current_size 8", ""])


def test_tgi_gives_qps_error_ratio_latency_and_queue() -> None:
    before = tgi_page(100, {"validation": 1, "overloaded": 0}, [0.2] * 99, 0)
    after = tgi_page(400, {"validation": 4, "overloaded": 8}, [0.2] * 99 + [0.8] * 288, 3)
    f = figures([before, after], PROFILES["tgi"])
    assert f.qps == pytest.approx(300 / 15)
    assert f.error_ratio == pytest.approx(11 / 300)
    assert f.latency_quantiles is not None and 0.5 < f.latency_quantiles[0.5] <= 1.0
    assert (f.queue_length, f.running_requests) == (3, 8)


def triton_ensemble_page(client_requests: int) -> str:
    """Triton counts a request once per model it reaches: the ensemble and each composing model."""
    lines = ["# TYPE nv_inference_request_success counter"]
    for model in ("pipeline", "preprocess", "classifier", "postprocess"):
        lines.append(f'nv_inference_request_success{{model="{model}",version="1"}} {client_requests}')
    lines += ["# TYPE nv_inference_request_failure counter"]
    lines += ['nv_inference_request_failure{model="pipeline",version="1",reason="BACKEND"} 0']
    return "\n".join([*lines, ""])


def test_triton_counts_the_client_requests_of_the_top_level_models_given_by_a_model_match() -> None:
    pages = [triton_ensemble_page(1000), triton_ensemble_page(1150)]
    everything = figures(pages, PROFILES["triton"])
    assert everything.qps == pytest.approx(4 * 150 / 15)  # one request counted by four models
    top = Mapping(
        success=Selector(metric="nv_inference_request_success", match={"model": "pipeline"}),
        errors=Selector(metric="nv_inference_request_failure", match={"model": "pipeline"}),
    )
    assert figures(pages, resolve("triton", top)).qps == pytest.approx(150 / 15)


def test_docs_list_every_profile_and_name_the_versions() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "inference.md").read_text()
    for profile in PROFILES:
        assert re.search(rf"`{profile}`", doc), profile
    assert "vllm:gpu_cache_usage_perc" in doc and "top-level" in doc
