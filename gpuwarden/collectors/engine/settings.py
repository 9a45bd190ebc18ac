"""The engine probe's settings: `collectors.engine` in the agent's YAML."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from gpuwarden.agent.registry import CollectorSettings
from gpuwarden.config_base import StrictModel


class HttpProbeSettings(StrictModel):
    url: str = Field(
        "http://127.0.0.1:8000", description="base URL of the serving endpoint (no trailing path)"
    )
    protocol: Literal["kserve", "openai"] = Field(
        "kserve",
        description="kserve: KServe v2 / Triton `/v2/models/<model>/infer` with the canary's tensors; "
        "openai: `/v1/completions` of vLLM or SGLang with `prompt` and `expect`",
    )
    model: str = Field("canary", description="model name (KServe) or served model id (OpenAI)")
    check_ready: bool = Field(
        True,
        description="first GET /v2/health/ready (kserve) or /v1/models (openai); a non-200 fails the probe",
    )
    prompt: str = Field(
        "Repeat exactly: gpuwarden canary", description="openai: the prompt sent with temperature 0"
    )
    expect: str = Field("gpuwarden canary", description="openai: text the completion must contain")
    max_tokens: int = Field(16, ge=1, le=4096, description="openai: max_tokens of the canary completion")
    bearer_token_file: str | None = Field(None, description="file holding an API key sent as a bearer token")
    # A canary's answer is a few KB; a larger body is not the engine's answer, and reading it whole
    # would grow the agent by its size.
    max_body_bytes: int = Field(
        1 << 20, ge=1024, description="largest answer accepted from the endpoint, after decompression (bytes)"
    )


class OnnxProbeSettings(StrictModel):
    model_file: str = Field("canary.onnx", description="ONNX model file inside model_dir")
    provider: Literal["cpu", "cuda"] = Field("cpu", description="ONNX Runtime execution provider")


class TensorRTProbeSettings(StrictModel):
    module: Literal["auto", "tensorrt", "tensorrt_lean"] = Field(
        "auto",
        description="auto: the full `tensorrt` module, else the lean runtime (`tensorrt_lean_bindings` or "
        "`tensorrt_lean`); the lean runtime only deserializes version-compatible plans",
    )
    plan_file: str = Field("canary.plan", description="serialized TensorRT engine (plan) inside model_dir")
    build_from_onnx: str | None = Field(
        None,
        description="build the plan from this ONNX file inside model_dir instead of reading plan_file (needs "
        "the full TensorRT builder); the built plan is cached in cache_dir",
    )
    cache_dir: str = Field("/var/cache/gpuwarden/engine", description="where built plans are cached")
    device: int = Field(
        0, ge=0, description="CUDA device index the canary and the kernel launch timing run on"
    )


class TorchProbeSettings(StrictModel):
    model_file: str = Field(
        "canary.safetensors", description="safetensors file of the canary MLP's weights inside model_dir"
    )
    device: str = Field(
        "cuda",
        pattern=r"^(cuda(:\d+)?|cpu)$",
        description="cuda or cuda:N: the GPU the canary runs on (no CPU fallback: a GPU that torch cannot "
        "use fails the probe); cpu only for tests on machines without a GPU, it says nothing about the GPU",
    )


class EngineSettings(CollectorSettings):
    # Off by default: the probe needs to know which engine the node serves and where its canary lives.
    enabled: bool = Field(False, description="run the engine probe (needs a model_dir with a canary)")
    interval: float = Field(30.0, gt=0, description="seconds between two probes")
    timeout: float = Field(15.0, gt=0, description="deadline for one collection, in seconds")
    backend: Literal["onnxruntime", "http", "tensorrt", "torch"] = Field(
        "http", description="how the canary runs: against the serving endpoint, or in-process"
    )
    model_dir: str = Field(
        "/var/lib/gpuwarden/canary",
        description="directory with canary.json and SHA256SUMS, and the model or plan of in-process backends",
    )
    isolate: bool = Field(
        True,
        description="run the onnxruntime/tensorrt/torch canary in a child process, so a crash or hang in "
        "native code (TensorRT, CUDA) fails the probe instead of taking the agent down",
    )
    verify_checksums: bool = Field(True, description="check model files against SHA256SUMS before loading")
    probe_timeout: float = Field(
        5.0,
        gt=0,
        description="seconds one HTTP call of the probe may take in all, connect to last byte (canary "
        "request, readiness check)",
    )
    failure_threshold: int = Field(
        3, ge=1, description="consecutive failed probes before health turns UNHEALTHY (DEGRADED before)"
    )
    serving_ready_url: str | None = Field(
        None,
        description="readiness URL of the served engine (e.g. http://127.0.0.1:8000/v2/health/ready) checked "
        "before an in-process canary, so a crashed or hung engine fails the onnxruntime/tensorrt/torch probe "
        "too",
    )
    kernel_latency: Literal["auto", "on", "off"] = Field(
        "auto",
        description="time a no-op CUDA kernel launch via cuda-python; auto: only where the driver is usable, "
        "on: report UNKNOWN health where it is not. Holds a CUDA context (524 MiB of GPU memory on an H200)",
    )
    kernel_latency_samples: int = Field(50, ge=1, le=10000, description="launches timed per collection")
    http: HttpProbeSettings = Field(default_factory=HttpProbeSettings, description="http backend")
    onnxruntime: OnnxProbeSettings = Field(
        default_factory=OnnxProbeSettings, description="onnxruntime backend"
    )
    tensorrt: TensorRTProbeSettings = Field(
        default_factory=TensorRTProbeSettings, description="tensorrt backend"
    )
    torch: TorchProbeSettings = Field(default_factory=TorchProbeSettings, description="torch backend")

    @model_validator(mode="after")
    def _timeouts(self) -> EngineSettings:
        # A probe makes up to two HTTP calls (readiness, then the canary), each bounded by probe_timeout.
        if 2 * self.probe_timeout >= self.timeout:
            raise ValueError(
                "probe_timeout must be less than half of timeout (a probe makes two calls), "
                "or the runner kills the probe first"
            )
        return self
