"""The probe interface every engine backend implements, and the golden-answer comparison they share.

A backend's `run(canary)` returns the engine's output tensors for the canary's inputs, or raises
`ProbeFailure(reason, detail)`. `reason` is one word from REASONS (a bounded label value); `detail` is the
sentence an on-call engineer reads. Comparing against the golden output is done here, once, for all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from gpuwarden.health import Action
from gpuwarden.modelfiles import Canary

# reason → (permanent?, suggested action). A permanent failure is a deployment problem that retrying will
# not fix (bad checksum, missing module, a plan for another GPU): UNHEALTHY at once. The others are what a
# sick engine does (hangs, crashes, errors, wrong numbers): UNHEALTHY after N consecutive failures.
REASONS: dict[str, tuple[bool, Action]] = {
    "unreachable": (False, Action.RESTART_WORKER),  # connection refused: the engine process is gone
    "timeout": (False, Action.RESTART_WORKER),  # no answer within the probe timeout: hung engine
    "not_ready": (False, Action.RESTART_WORKER),  # /v2/health/ready answered non-200
    "http_error": (False, Action.RESTART_WORKER),  # the infer call answered 4xx/5xx
    "bad_response": (False, Action.RESTART_WORKER),  # an answer that is not the protocol's shape
    # Silent data corruption: wrong numbers with every endpoint green is the symptom of failing GPU memory
    # (NVIDIA XID catalog: XID 48 double-bit ECC, XID 63/64 row remapping); look at the hardware first.
    "wrong_answer": (False, Action.INSPECT_HARDWARE),
    "runtime_error": (False, Action.RESTART_WORKER),  # the runtime raised while running the canary
    "checksum_mismatch": (True, Action.REDEPLOY_MODEL),  # model files differ from their manifest
    "model_invalid": (True, Action.REDEPLOY_MODEL),  # canary file or model file unreadable/malformed
    "missing_plan": (True, Action.REDEPLOY_MODEL),  # no serialized engine where the config says
    "corrupt_plan": (True, Action.REDEPLOY_MODEL),  # the runtime cannot deserialize the plan
    "incompatible_plan": (True, Action.REDEPLOY_MODEL),  # plan built for another GPU or TensorRT version
    "module_missing": (True, Action.FIX_CONFIG),  # the runtime's Python module is not installed
    "config_error": (True, Action.FIX_CONFIG),  # a file the settings name cannot be read
    "no_gpu": (True, Action.INSPECT_HARDWARE),  # the CUDA driver cannot be initialised
}


class ProbeFailure(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown probe failure reason {reason}")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


Outputs = Mapping[str, Sequence[float]]  # output tensor name → row-major values


class Backend(Protocol):
    name: str
    uses_canary: bool  # False: the backend judges its own answer (OpenAI completions) and run() gets None
    files: list[str]  # model files inside model_dir to verify against SHA256SUMS before loading

    def run(self, canary: Canary | None) -> Outputs | None:
        """Run the canary through the engine; raise ProbeFailure with a reason on any failure."""
        ...

    def reload(self) -> None:
        """Forget what was loaded: the model files changed (and passed verification again)."""
        ...

    def runtime_info(self) -> tuple[str, str]:
        """(runtime name, version) for the info metric, e.g. ("onnxruntime", "1.19.2")."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Comparison:
    max_abs_error: float
    worst: str  # "output[3]: got 0.51, want 0.46" or "" when everything matched


def compare(canary: Canary, outputs: Outputs) -> Comparison:
    """Element-wise |got - want| <= atol + rtol·|want| (numpy.isclose's rule); NaN never matches."""
    max_err, worst, worst_excess = 0.0, "", 0.0
    for golden in canary.outputs:
        got = outputs.get(golden.name)
        if got is None:
            raise ProbeFailure("bad_response", f"the engine returned no output named '{golden.name}'")
        if len(got) != len(golden.data):
            raise ProbeFailure(
                "bad_response",
                f"output '{golden.name}' has {len(got)} values, the canary expects {len(golden.data)}",
            )
        for i, (g, w) in enumerate(zip(got, golden.data, strict=True)):
            err = abs(g - w) if math.isfinite(g) else math.inf
            max_err = max(max_err, err)
            excess = err - (canary.atol + canary.rtol * abs(w))
            if excess > worst_excess or (math.isinf(err) and not worst):
                worst_excess = excess
                worst = f"{golden.name}[{i}]: got {g:.6g}, want {w:.6g}"
    return Comparison(max_err, worst)
