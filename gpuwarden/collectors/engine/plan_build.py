"""Build a TensorRT plan from ONNX with the full builder, and cache it.

A plan is specific to the TensorRT release and the GPU's compute capability, so the cache key holds both
plus the ONNX file's checksum: a driver-only upgrade keeps the cache, a TensorRT upgrade or a model change
rebuilds. The canary's input shape is used as min = opt = max of the optimization profile (the probe only
ever runs that shape). Needs the full `tensorrt` module; PyPI publishes no full builder for CUDA 13, so on
such nodes ship a version-compatible plan instead.
"""

from __future__ import annotations

import os
from typing import Any

from gpuwarden import modelfiles
from gpuwarden.collectors.engine.probe import ProbeFailure
from gpuwarden.modelfiles import Canary


def cache_path(cache_dir: str, onnx_sha256: str, version: str, compute_capability: str) -> str:
    return os.path.join(cache_dir, f"canary-{onnx_sha256[:16]}-trt{version}-sm{compute_capability}.plan")


def build(trt: Any, logger: Any, onnx_path: str, canary: Canary) -> bytes:
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10+: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    with open(onnx_path, "rb") as f:
        if not parser.parse(f.read()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise ProbeFailure("model_invalid", f"TensorRT's ONNX parser rejected {onnx_path}: {errors}")
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    for tensor in canary.inputs:
        profile.set_shape(tensor.name, tensor.shape, tensor.shape, tensor.shape)
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ProbeFailure("runtime_error", f"TensorRT failed to build a plan: {logger.messages[-3:]}")
    return bytes(serialized)


def cached_plan(
    trt: Any, logger: Any, onnx_path: str, canary: Canary, cache_dir: str, version: str, cc: str
) -> bytes:
    try:
        path = cache_path(cache_dir, modelfiles.sha256_file(onnx_path), version, cc)
    except OSError as err:
        raise ProbeFailure("model_invalid", f"cannot read {onnx_path}: {err.strerror}") from None
    if os.path.exists(path):
        with open(path, "rb") as f:
            return f.read()
    data = build(trt, logger, onnx_path, canary)
    try:
        os.makedirs(cache_dir, exist_ok=True)
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        pass  # an unwritable cache costs a rebuild next time, not a failed probe
    return data
