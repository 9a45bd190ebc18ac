"""The reference inference worker: a tiny ONNX model behind KServe v2, vLLM-style metrics and faults.

Used by the demo and the tests as the inference engine a node serves. `python -m gpuwarden.worker --help`.
This package's import is light; numpy, onnx and onnxruntime (the `worker` extra) load when it starts.
"""
