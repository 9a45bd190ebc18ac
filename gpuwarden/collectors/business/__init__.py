"""Business metrics of the inference server: QPS, error ratio, latency, queue, batch, memory.

See docs/business.md. Importing the package registers the `business` collector.
"""

from gpuwarden.collectors.business.collector import BusinessCollector

__all__ = ["BusinessCollector"]
