"""The tensorrt backend: deserialize the node's plan, run the canary on the GPU, read the answer back.

Works with the full `tensorrt` module or the lean runtime (PyPI `tensorrt-lean-cu13-bindings`, module
`tensorrt_lean_bindings`; older releases: `tensorrt_lean`). The lean runtime only deserializes plans built
elsewhere with the VERSION_COMPATIBLE flag; only the full module has the builder and ONNX parser, so only
it can build a plan from ONNX (cached per ONNX checksum, TensorRT version and compute capability, because
a plan is tied to both). TensorRT reports why a plan does not load through its logger, not through
exceptions, so the logger's messages are kept and classified: another GPU or TensorRT version →
incompatible_plan, anything else → corrupt_plan. Device memory goes through cuda-python's driver API.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
from typing import Any

from gpuwarden.collectors.engine import plan_build
from gpuwarden.collectors.engine.cuda_driver import CudaUnavailable, Driver
from gpuwarden.collectors.engine.probe import Outputs, ProbeFailure
from gpuwarden.collectors.engine.settings import TensorRTProbeSettings
from gpuwarden.modelfiles import Canary

MODULES = {"tensorrt": ("tensorrt",), "tensorrt_lean": ("tensorrt_lean_bindings", "tensorrt_lean")}
# TensorRT's own wording for a plan made for another device, platform or release (nvinfer's
# deserialization checks: "...generated on an incompatible device, expecting compute X got compute Y",
# "...not compatible with this version of TensorRT, expecting library version X got Y", "Version tag does
# not match"; seen on an H200 with the 11.4 lean runtime: "Platform specific tag mismatch detected.
# TensorRT plan files are only supported on the target runtime platform they were created on"). A wrong
# magic tag ("Serialization assertion header.magicTag == kEXPECTED_MAGIC_TAG failed") means the file is
# no plan at all: corrupt, although that message also says "incompatible serialization version".
INCOMPATIBLE = re.compile(
    r"incompatible device|not compatible with this version|expecting library version|version tag|"
    r"compute capability|please rebuild|different (?:version|device)|hardware compatib|"
    r"platform specific tag|target runtime platform",
    re.IGNORECASE,
)
MAGIC_TAG = "magicTag"


def load_module(preference: str) -> tuple[Any, str]:
    """(module, flavour) where flavour is "tensorrt" or "tensorrt_lean"."""
    order = ["tensorrt", "tensorrt_lean"] if preference == "auto" else [preference]
    tried = []
    for flavour in order:
        for name in MODULES[flavour]:
            try:
                return importlib.import_module(name), flavour
            except ImportError as err:
                tried.append(f"{name} ({err})")
    raise ProbeFailure("module_missing", "no TensorRT Python module: tried " + "; ".join(tried))


def make_logger(trt: Any) -> Any:
    class KeepingLogger(trt.ILogger):  # type: ignore[misc,unused-ignore]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.messages: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            if severity <= trt.ILogger.Severity.WARNING:
                self.messages.append(str(msg))

    return KeepingLogger()


def classify_deserialize_failure(messages: list[str]) -> ProbeFailure:
    text = " | ".join(messages[-4:]) or "deserialize_cuda_engine returned nothing and logged no reason"
    incompatible = any(INCOMPATIBLE.search(m) and MAGIC_TAG not in m for m in messages)
    reason = "incompatible_plan" if incompatible else "corrupt_plan"
    return ProbeFailure(reason, f"TensorRT cannot deserialize the plan: {text}")


class TensorRTBackend:
    name = "tensorrt"
    uses_canary = True

    def __init__(self, settings: TensorRTProbeSettings, model_dir: str) -> None:
        self.settings = settings
        self.model_dir = model_dir
        self.files = [settings.build_from_onnx or settings.plan_file]
        self.flavour, self.version = "", ""
        self._trt: Any = None
        self._logger: Any = None
        self._runtime: Any = None
        self._engine: Any = None
        self._cuda: Driver | None = None
        self._ctx: Any = None
        self._cc = ""

    def _start(self) -> None:
        """Import the module, create the Runtime: the parts that do not depend on the plan."""
        if self._runtime is not None:
            return
        self._trt, self.flavour = load_module(self.settings.module)
        self.version = str(getattr(self._trt, "__version__", ""))
        try:
            self._cuda = Driver()
            dev, self._ctx = self._cuda.primary_context(self.settings.device)
            self._cc = self._cuda.compute_capability(dev)
        except CudaUnavailable as err:
            raise ProbeFailure("no_gpu", f"CUDA device {self.settings.device} is not usable: {err}") from None
        self._logger = make_logger(self._trt)
        try:
            runtime = self._trt.Runtime(self._logger)
        except Exception as err:
            raise ProbeFailure(
                "no_gpu", f"cannot create a TensorRT runtime: {err} {self._logger.messages}"
            ) from None
        if runtime is None:
            raise ProbeFailure("no_gpu", f"cannot create a TensorRT runtime: {self._logger.messages}")
        self._runtime = runtime

    def plan_bytes(self, canary: Canary) -> bytes:
        s = self.settings
        if s.build_from_onnx:
            if self.flavour != "tensorrt":
                raise ProbeFailure(
                    "module_missing", "building a plan from ONNX needs the full tensorrt module (the builder)"
                )
            onnx_path = os.path.join(self.model_dir, s.build_from_onnx)
            return plan_build.cached_plan(
                self._trt, self._logger, onnx_path, canary, s.cache_dir, self.version, self._cc
            )
        path = os.path.join(self.model_dir, s.plan_file)
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise ProbeFailure("missing_plan", f"{path} does not exist") from None
        except OSError as err:
            raise ProbeFailure("missing_plan", f"cannot read {path}: {err.strerror}") from None

    def load(self, canary: Canary) -> None:
        self._start()
        data = self.plan_bytes(canary)
        self._logger.messages.clear()
        try:
            engine = self._runtime.deserialize_cuda_engine(data)
        except Exception as err:  # some releases raise instead of returning None
            self._logger.messages.append(str(err))
            engine = None
        if engine is None:
            raise classify_deserialize_failure(self._logger.messages)
        self._engine = engine

    def reload(self) -> None:
        self._engine = None

    def run(self, canary: Canary | None) -> Outputs:
        assert canary is not None
        if self._engine is None:
            self.load(canary)
        assert self._cuda is not None
        try:
            self._cuda("cuCtxSetCurrent", self._ctx)  # the runner may call from a new thread
            return execute(self._trt, self._engine, self._cuda, canary)
        except CudaUnavailable as err:
            raise ProbeFailure("runtime_error", f"CUDA call failed during the canary: {err}") from None

    def runtime_info(self) -> tuple[str, str]:
        return self.flavour or "tensorrt", self.version

    def close(self) -> None:
        self._engine = self._runtime = None
        if self._cuda is not None and self._ctx is not None:
            with contextlib.suppress(CudaUnavailable):
                self._cuda("cuDevicePrimaryCtxRelease", self._cuda("cuDeviceGet", self.settings.device))
            self._ctx = None


def execute(trt: Any, engine: Any, cuda: Driver, canary: Canary) -> Outputs:
    """Allocate every I/O tensor on the GPU, copy the canary in, enqueue, copy the outputs back."""
    import numpy as np

    context = engine.create_execution_context()
    if context is None:
        raise ProbeFailure("runtime_error", "TensorRT could not create an execution context (GPU memory?)")
    inputs = {t.name: np.asarray(t.data, dtype=np.float32).reshape(t.shape) for t in canary.inputs}
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    for name in names:
        if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
            if name not in inputs:
                raise ProbeFailure("model_invalid", f"the plan's input '{name}' is not in the canary")
            context.set_input_shape(name, inputs[name].shape)
    buffers, host_out = [], {}
    stream = cuda("cuStreamCreate", 0)
    try:
        for name in names:
            if engine.get_tensor_dtype(name) != trt.DataType.FLOAT:
                raise ProbeFailure("model_invalid", f"tensor '{name}' is not FP32; the canary is FP32")
            shape = tuple(context.get_tensor_shape(name))
            host = inputs[name] if name in inputs else np.empty(shape, dtype=np.float32)
            dptr = cuda("cuMemAlloc", max(host.nbytes, 1))
            buffers.append(dptr)
            if name in inputs:
                cuda("cuMemcpyHtoD", dptr, host.ctypes.data, host.nbytes)
            else:
                host_out[name] = (dptr, host)
            context.set_tensor_address(name, int(dptr))
        if not context.execute_async_v3(int(stream)):
            raise ProbeFailure("runtime_error", "TensorRT execute_async_v3 returned false")
        cuda("cuStreamSynchronize", stream)
        for dptr, host in host_out.values():
            cuda("cuMemcpyDtoH", host.ctypes.data, dptr, host.nbytes)
    finally:
        for dptr in buffers:
            cuda("cuMemFree", dptr)
        cuda("cuStreamDestroy", stream)
    return {name: host.astype(np.float64).ravel().tolist() for name, (_, host) in host_out.items()}
