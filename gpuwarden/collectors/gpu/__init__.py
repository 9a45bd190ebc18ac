"""The GPU collector (NVML). See collector.py and docs/gpu.md. Importing the package registers `gpu`."""

from gpuwarden.collectors.gpu.collector import GpuCollector
from gpuwarden.collectors.gpu.settings import GpuSettings

__all__ = ["GpuCollector", "GpuSettings"]
