"""What the engine probe's tensorrt backend does with a real TensorRT lean runtime on a GPU node.

    python bench/tensorrt_lean_check.py [--out FILE] [--record FILE]

Each step prints `RAN`, `SKIPPED` or `FAILED` with what it saw, so the output says exactly what ran on
the GPU and what did not. `--record` writes TensorRT's own log messages per case as JSON: the unit tests
classify those recorded messages (a recording of the real runtime, not invented strings).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

LINES: list[str] = []
RECORDED: dict[str, list[str]] = {}


def say(line: str) -> None:
    LINES.append(line)
    print(line, flush=True)


def step(name: str, fn: Callable[[], str]) -> None:
    started = time.perf_counter()
    try:
        outcome = fn()
    except Exception as err:  # this script reports; it must reach the end
        say(f"FAILED  {name}: {type(err).__name__}: {err}")
        return
    status = "SKIPPED" if outcome.startswith("skipped") else "RAN    "
    say(f"{status} {name} ({time.perf_counter() - started:.2f} s): {outcome}")


def environment() -> str:
    parts = [f"python {platform.python_version()}"]
    try:
        import pynvml

        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(0)
        cc = pynvml.nvmlDeviceGetCudaComputeCapability(h)
        parts.append(f"GPU {pynvml.nvmlDeviceGetName(h)} cc {cc[0]}.{cc[1]}")
        parts.append(f"driver {pynvml.nvmlSystemGetDriverVersion()}")
    except Exception as err:
        parts.append(f"no NVML ({err})")
    try:
        import onnxruntime

        parts.append(f"onnxruntime {onnxruntime.__version__} {onnxruntime.get_available_providers()}")
    except ImportError:
        parts.append("no onnxruntime")
    return ", ".join(parts)


def modules() -> str:
    out = []
    for name in ("tensorrt", "tensorrt_lean_bindings", "tensorrt_lean", "cuda.bindings.driver"):
        try:
            mod = importlib.import_module(name)
            out.append(f"{name} {getattr(mod, '__version__', '?')} imports")
        except Exception as err:
            out.append(f"{name} missing ({str(err)[:60]})")
    return "; ".join(out)


def collector(model_dir: str, backend: str = "tensorrt", **settings: Any) -> Any:
    """An engine collector on `model_dir`; `settings`: further collectors.engine keys."""
    from gpuwarden.agent.registry import CollectorContext
    from gpuwarden.collectors.engine.collector import EngineCollector
    from gpuwarden.collectors.engine.settings import EngineSettings
    from gpuwarden.paths import Paths

    validated = EngineSettings.model_validate(
        {"enabled": True, "backend": backend, "model_dir": model_dir, "kernel_latency": "off", **settings}
    )
    return EngineCollector(validated, CollectorContext(Paths(), logging.getLogger("check")))


def run_case(model_dir: str, tensorrt: dict[str, Any]) -> dict[str, Any]:
    """In the child process: one probe, its health and TensorRT's log messages."""
    from gpuwarden.health import HealthResult

    isolate = bool(tensorrt.pop("isolate", False))
    c = collector(model_dir, isolate=isolate, tensorrt=tensorrt)
    (h,) = [item for item in c.collect() if isinstance(item, HealthResult)]
    logger = getattr(c.backend, "_logger", None)
    messages = list(logger.messages) if logger is not None else []
    c.close()
    return {"result": f"{h.state} [{h.suggested_action}] {h.reason}", "messages": messages}


def probe_case(name: str, model_dir: str, **tensorrt: Any) -> str:
    """Each case runs in a fresh process: a TensorRT that crashes on a bad plan must not end the check."""
    argv = [
        sys.executable,
        os.path.abspath(__file__),
        "--case",
        json.dumps(tensorrt),
        "--model-dir",
        model_dir,
    ]
    child = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    if child.returncode != 0:
        RECORDED[name] = [f"child exited with {child.returncode}", child.stderr[-500:]]
        return f"the probe process died with exit code {child.returncode}: {child.stderr.strip()[-300:]}"
    outcome = json.loads(child.stdout.strip().splitlines()[-1])
    RECORDED[name] = outcome["messages"]
    return str(outcome["result"])


def runtime_creation(model_dir: str) -> str:
    from gpuwarden.collectors.engine.settings import TensorRTProbeSettings
    from gpuwarden.collectors.engine.tensorrt_backend import TensorRTBackend

    backend = TensorRTBackend(TensorRTProbeSettings(module="tensorrt_lean"), model_dir)
    backend._start()
    runtime = type(backend._runtime).__name__
    out = f"{backend.flavour} {backend.version} created {runtime} on device 0 (cc {backend._cc})"
    backend.close()
    return out


def api_surface() -> str:
    """Every TensorRT attribute the backend's execute() uses exists in this module (no plan can be built)."""
    from gpuwarden.collectors.engine.tensorrt_backend import load_module

    trt, flavour = load_module("tensorrt_lean")
    wanted = {
        "Runtime": ["deserialize_cuda_engine"],
        "ICudaEngine": [
            "num_io_tensors",
            "get_tensor_name",
            "get_tensor_mode",
            "get_tensor_dtype",
            "create_execution_context",
        ],
        "IExecutionContext": [
            "set_input_shape",
            "get_tensor_shape",
            "set_tensor_address",
            "execute_async_v3",
        ],
        "TensorIOMode": ["INPUT", "OUTPUT"],
        "DataType": ["FLOAT"],
        "ILogger": ["Severity"],
    }
    missing = [
        f"{c}.{a}" for c, attrs in wanted.items() for a in attrs if not hasattr(getattr(trt, c, None), a)
    ]
    present = sum(len(a) for a in wanted.values()) - len(missing)
    return f"{flavour}: {present} used attributes present" + (f", MISSING {missing}" if missing else "")


def memory_round_trip() -> str:
    """The canary input through the CUDA calls execute() makes: alloc, HtoD, DtoH, free, on a stream."""
    import numpy as np

    from gpuwarden.collectors.engine.cuda_driver import Driver
    from gpuwarden.worker import model

    cuda = Driver()
    cuda.primary_context(0)
    x = model.canary_input()
    back = np.empty_like(x)
    stream = cuda("cuStreamCreate", 0)
    dptr = cuda("cuMemAlloc", x.nbytes)
    cuda("cuMemcpyHtoD", dptr, x.ctypes.data, x.nbytes)
    cuda("cuStreamSynchronize", stream)
    cuda("cuMemcpyDtoH", back.ctypes.data, dptr, x.nbytes)
    cuda("cuMemFree", dptr)
    cuda("cuStreamDestroy", stream)
    same = bool(np.array_equal(x, back))
    return f"{x.nbytes} bytes to the GPU and back, identical: {same}"


def write_plan(model_dir: str, data: bytes | None, *, listed: bool = True) -> None:
    from gpuwarden import modelfiles

    plan = os.path.join(model_dir, "canary.plan")
    if data is None:
        if os.path.exists(plan):
            os.remove(plan)
        modelfiles.write_manifest(model_dir, ["canary.onnx", modelfiles.CANARY])
        return
    with open(plan, "wb") as f:
        f.write(data)
    modelfiles.write_manifest(model_dir, ["canary.onnx", modelfiles.CANARY, "canary.plan"])
    if not listed:  # the file changes after its checksum was taken: a partial copy, bit rot
        with open(plan, "ab") as f:
            f.write(b"\0")


def kernel_latency() -> str:
    from gpuwarden.collectors.engine.kernel_latency import KernelLatency

    used_before = gpu_memory_used()
    k = KernelLatency(0)
    rounds = [k.measure(1000) for _ in range(3)]
    used_with_context = gpu_memory_used()
    k.close()
    gpu = ", ".join(f"{r.gpu_seconds * 1e6:.2f}" for r in rounds)
    host = ", ".join(f"{r.host_seconds * 1e6:.2f}" for r in rounds)
    context = (used_with_context - used_before) / 2**20
    return (
        f"{rounds[0].uuid}: median GPU µs per launch (3 rounds of 1000) {gpu}; host µs {host}; "
        f"GPU memory used rose by {context:.0f} MiB while the measuring CUDA context was open"
    )


def kernel_latency_child() -> str:
    argv = [sys.executable, os.path.abspath(__file__), "--kernel-only"]
    child = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    if child.returncode != 0:
        raise RuntimeError(f"exit {child.returncode}: {child.stderr.strip()[-300:]}")
    return child.stdout.strip().splitlines()[-1]


def gpu_memory_used() -> int:
    import pynvml

    pynvml.nvmlInit()
    return int(pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(0)).used)


def onnx_case(model_dir: str, provider: str) -> str:
    from gpuwarden.health import HealthResult

    c = collector(model_dir, "onnxruntime", kernel_latency="on", onnxruntime={"provider": provider})
    items = list(c.collect())
    c.close()
    health = [f"{h.component}={h.state} {h.reason[:90]}" for h in items if isinstance(h, HealthResult)]
    kernel = [m for m in items if not isinstance(m, HealthResult) and "kernel_launch" in m.name]
    values = [f"{m.name}={s.value * 1e6:.2f}µs" for m in kernel for s in m.samples]
    return "; ".join(health + values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", help="also write the report here")
    parser.add_argument("--record", help="write TensorRT's log messages per case here (JSON)")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: one probe in a child process
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    parser.add_argument("--kernel-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.kernel_only:  # a fresh process: no CUDA context yet, so the memory it takes shows
        print(kernel_latency())
        return 0
    if args.case:
        print(json.dumps(run_case(args.model_dir, json.loads(args.case))))
        return 0
    say(f"# tensorrt lean runtime check, {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
    step("environment", environment)
    step("python modules", modules)
    from gpuwarden.worker import model

    model_dir = tempfile.mkdtemp(prefix="canary-")
    model.generate(model_dir)
    with open(os.path.join(model_dir, "canary.onnx"), "rb") as f:
        onnx_bytes = f.read()
    step("lean runtime creation", lambda: runtime_creation(model_dir))
    step("TensorRT API surface used by the backend", api_surface)
    step("device memory round trip (cuda-python)", memory_round_trip)
    write_plan(model_dir, None)
    step("missing plan", lambda: probe_case("missing_plan", model_dir, module="tensorrt_lean"))
    write_plan(model_dir, os.urandom(4096))
    step("corrupt plan (4 KiB random)", lambda: probe_case("random_plan", model_dir, module="tensorrt_lean"))
    step(
        "corrupt plan, probe isolated in a child process",
        lambda: probe_case("random_plan_isolated", model_dir, module="tensorrt_lean", isolate=True),
    )
    write_plan(model_dir, b"ftrt" + os.urandom(4092))
    step("corrupt plan ('ftrt' + random)", lambda: probe_case("ftrt_plan", model_dir, module="tensorrt_lean"))
    write_plan(model_dir, onnx_bytes)
    step("ONNX file given as plan", lambda: probe_case("onnx_as_plan", model_dir, module="tensorrt_lean"))
    write_plan(model_dir, b"")
    step("empty plan", lambda: probe_case("empty_plan", model_dir, module="tensorrt_lean"))
    write_plan(model_dir, os.urandom(4096), listed=False)
    step("plan changed after checksum", lambda: probe_case("checksum", model_dir, module="tensorrt_lean"))
    write_plan(model_dir, os.urandom(4096))
    step(
        "build from ONNX with the lean runtime",
        lambda: probe_case("lean_build", model_dir, module="tensorrt_lean", build_from_onnx="canary.onnx"),
    )
    step("full tensorrt module requested", lambda: probe_case("full", model_dir, module="tensorrt"))
    step("kernel launch latency (cuda-python, fresh process)", kernel_latency_child)
    step("onnxruntime backend, CPU provider", lambda: onnx_case(model_dir, "cpu"))
    step("onnxruntime backend, CUDA provider", lambda: onnx_case(model_dir, "cuda"))
    step(
        "real TensorRT canary inference",
        lambda: (
            "skipped: needs a plan, and no TensorRT builder from PyPI runs on compute capability 9.0 "
            "(full builder: no CUDA 13 wheel; TensorRT-RTX: refuses cc 9.0); "
            "the lean runtime only deserializes"
        ),
    )
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write("\n".join(LINES) + "\n")
    if args.record:
        with open(args.record, "w", encoding="utf-8") as f:
            json.dump(RECORDED, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
