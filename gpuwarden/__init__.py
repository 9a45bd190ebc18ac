"""gpuwarden: a per-node SRE agent for GPU inference fleets."""

from gpuwarden import promclient

__version__ = "0.1.0"

promclient.install()  # before any module of ours imports a part of prometheus_client (see promclient.py)
