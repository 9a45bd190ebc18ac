"""gpuwarden: a per-node SRE agent for GPU inference fleets."""

from gpuwarden import deferred

__version__ = "0.1.0"

# Before any module of ours imports a part of prometheus_client, or pydantic (which imports secrets):
# see deferred.py for what each saves.
deferred.install("prometheus_client")
deferred.install("secrets")
