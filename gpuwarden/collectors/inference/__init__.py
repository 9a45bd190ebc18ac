"""Business metrics of the inference server: QPS, error ratio, latency, queue, batch, memory.

See docs/inference.md. Importing the package registers the `inference` collector.
"""

from gpuwarden.collectors.inference.collector import InferenceCollector

__all__ = ["InferenceCollector"]
