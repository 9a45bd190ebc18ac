"""The engine probe: canary inferences with golden answers against the node's inference engine.

Backends: `http` (KServe v2 / Triton, OpenAI-compatible), `onnxruntime`, `tensorrt` (full or lean runtime).
See docs/engine.md.
"""

from gpuwarden.collectors.engine.collector import EngineCollector

__all__ = ["EngineCollector"]
