"""ZooKeeper quorum checker: 4lw probes (probe), reply parsing (parse), the ensemble verdict (verdict),
the settings (settings) and the `zookeeper` collector (collector), declared in gpuwarden.collectors."""
