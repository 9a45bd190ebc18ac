"""Every playbook, imported explicitly so the list stays greppable (as `gpuwarden.collectors` does)."""

from gpuwarden.remediations.playbooks import (
    gpu_quarantine,
    log_rotation,
    memory_fraction,
    scale_signal,
    worker_restart,
)

__all__ = ["gpu_quarantine", "log_rotation", "memory_fraction", "scale_signal", "worker_restart"]
