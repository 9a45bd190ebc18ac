"""ZooKeeper quorum checker: 4lw probes (probe), reply parsing (parse), the ensemble verdict (verdict),
and the registered `zookeeper` collector (collector)."""

from gpuwarden.collectors.zookeeper import collector  # noqa: F401  (registers "zookeeper")
