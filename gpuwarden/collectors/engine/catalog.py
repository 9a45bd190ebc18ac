"""Every series the engine probe exports. `backend` is onnxruntime, http, tensorrt or torch."""

from __future__ import annotations

from gpuwarden.catalog import MetricSpec

CATALOG = (
    MetricSpec(
        "gpuwarden_engine_probe_success",
        "gauge",
        "1 if the last canary inference answered within tolerance of the golden output, else 0.",
        labels=("backend",),
    ),
    MetricSpec(
        "gpuwarden_engine_probe_latency_seconds",
        "gauge",
        "Wall time of the last canary probe (readiness check, inference and comparison).",
        labels=("backend",),
        unit="seconds",
    ),
    MetricSpec(
        "gpuwarden_engine_probe_consecutive_failures",
        "gauge",
        "Failed probes in a row; health turns UNHEALTHY at failure_threshold.",
        labels=("backend",),
    ),
    MetricSpec("gpuwarden_engine_probes_total", "counter", "Canary probes run.", labels=("backend",)),
    MetricSpec(
        "gpuwarden_engine_probe_failures_total",
        "counter",
        "Failed canary probes by reason (timeout, unreachable, wrong_answer, corrupt_plan, ...).",
        labels=("backend", "reason"),
    ),
    MetricSpec(
        "gpuwarden_engine_probe_max_abs_error",
        "gauge",
        "Largest absolute difference between the engine's answer and the golden output in the last probe.",
        labels=("backend",),
    ),
    MetricSpec(
        "gpuwarden_engine_probe_info",
        "gauge",
        "Always 1; the runtime that ran the canary "
        "(onnxruntime, tensorrt, tensorrt_lean, torch, kserve, openai).",
        labels=("backend", "runtime", "version"),
    ),
    MetricSpec(
        "gpuwarden_engine_kernel_launch_latency_seconds",
        "gauge",
        "Median GPU time of one no-op kernel launch between two CUDA events.",
        labels=("gpu", "uuid"),
        unit="seconds",
    ),
    MetricSpec(
        "gpuwarden_engine_kernel_launch_host_seconds",
        "gauge",
        "Median host time of one cuLaunchKernel call (the CPU side of launch overhead).",
        labels=("gpu", "uuid"),
        unit="seconds",
    ),
)
