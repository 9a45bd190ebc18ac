"""The onnxruntime backend: run the canary through ONNX Runtime in the agent's process.

For nodes and tests without TensorRT. The session is created once (after the checksum check) and again
only when the model files change. The CUDA execution provider is requested explicitly: ONNX Runtime
silently falls back to the CPU when CUDA cannot load, which would make a GPU probe pass without a GPU, so
a fallback is reported as a failure instead.
"""

from __future__ import annotations

from typing import Any

from gpuwarden.collectors.engine.probe import Outputs, ProbeFailure
from gpuwarden.collectors.engine.settings import OnnxProbeSettings
from gpuwarden.modelfiles import Canary

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


class OnnxBackend:
    name = "onnxruntime"
    uses_canary = True

    def __init__(self, settings: OnnxProbeSettings, model_path: str) -> None:
        self.settings = settings
        self.model_path = model_path
        self.files = [settings.model_file]
        self._session: Any = None
        self._version = ""

    def _ort(self) -> Any:
        try:
            import onnxruntime
        except ImportError as err:
            raise ProbeFailure("module_missing", f"onnxruntime is not installed ({err})") from None
        self._version = onnxruntime.__version__
        return onnxruntime

    def _load(self) -> Any:
        ort = self._ort()
        wanted = PROVIDERS[self.settings.provider]
        if wanted not in ort.get_available_providers():
            raise ProbeFailure(
                "module_missing",
                f"onnxruntime {ort.__version__} offers {', '.join(ort.get_available_providers())}, "
                f"not {wanted}",
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # the probe must not compete with the node's real work
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(self.model_path, options, providers=[wanted])
        except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise ProbeFailure("model_invalid", f"onnxruntime cannot load {self.model_path}: {err}") from None
        if session.get_providers()[0] != wanted:
            raise ProbeFailure("runtime_error", f"onnxruntime fell back to {session.get_providers()[0]}")
        return session

    def reload(self) -> None:
        self._session = None

    def run(self, canary: Canary | None) -> Outputs:
        import numpy as np

        assert canary is not None
        if self._session is None:
            self._session = self._load()
        feeds = {t.name: np.asarray(t.data, dtype=np.float32).reshape(t.shape) for t in canary.inputs}
        names = [t.name for t in canary.outputs]
        try:
            results = self._session.run(names, feeds)
        except Exception as err:
            raise ProbeFailure("runtime_error", f"onnxruntime failed to run the canary: {err}") from None
        return {
            name: np.asarray(r, dtype=np.float64).ravel().tolist()
            for name, r in zip(names, results, strict=True)
        }

    def runtime_info(self) -> tuple[str, str]:
        return "onnxruntime", self._version

    def close(self) -> None:
        self._session = None
