"""The worker's inference engine: one ONNX Runtime session over the model directory's canary.onnx.

ONNX Runtime's `InferenceSession.run` is thread-safe, so the HTTP threads share one session. With the CUDA
execution provider available, `--memory-fraction` becomes the provider's `gpu_mem_limit` (the share of the
GPU's memory the arena may take, as vLLM's --gpu-memory-utilization); on CPU it is only reported.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import onnxruntime as ort

from gpuwarden.worker.model import INPUT, MODEL_FILE, OUTPUT


def _gpu_total_bytes() -> int | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return int(pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(0)).total)
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no driver, no GPU: the limit simply is not applied
        return None


def providers(memory_fraction: float) -> list[Any]:
    available = ort.get_available_providers()
    if "CUDAExecutionProvider" in available:
        total = _gpu_total_bytes()
        options = {"gpu_mem_limit": int(total * memory_fraction)} if total else {}
        return [("CUDAExecutionProvider", options), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class Engine:
    def __init__(self, model_dir: str, memory_fraction: float) -> None:
        options = ort.SessionOptions()
        # Two intra-op threads: the model is tiny, and the worker shares its node with the agent and tests.
        options.intra_op_num_threads = 2
        self.session = ort.InferenceSession(
            os.path.join(model_dir, MODEL_FILE), options, providers=providers(memory_fraction)
        )
        self.provider = self.session.get_providers()[0]

    def infer(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run([OUTPUT], {INPUT: x})[0])
