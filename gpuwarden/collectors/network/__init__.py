"""The `network` collector package: /proc/net/dev, /sys/class/net, /sys/class/infiniband and peer probes.

Parsing lives in `netdev`, `infiniband` and `peers` (pure, table-tested); `collector` reads and emits.
"""

from gpuwarden.collectors.network.collector import NetworkCollector

__all__ = ["NetworkCollector"]
