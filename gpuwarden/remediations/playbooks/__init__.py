"""Every playbook, imported explicitly so the list stays greppable (as `gpuwarden.collectors` does)."""

from gpuwarden.remediations.playbooks import memory_fraction, worker_restart

__all__ = ["memory_fraction", "worker_restart"]
