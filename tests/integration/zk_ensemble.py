"""The loopback ZooKeeper ensemble lives in the package (the demo starts one too); tests import it here."""

from gpuwarden.demo.zookeeper import (
    CLASSPATH,
    MAIN,
    Ensemble,
    Member,
    four_letter,
    free_ports,
    zookeeper_available,
)

__all__ = ["CLASSPATH", "MAIN", "Ensemble", "Member", "four_letter", "free_ports", "zookeeper_available"]
