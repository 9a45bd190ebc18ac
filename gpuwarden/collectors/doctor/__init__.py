"""The `doctor` collector and `gpuwarden doctor`: the preflight of an inference node, as one command and
as a collector whose findings reach /health and the metrics. Importing the package registers `doctor`."""

from gpuwarden.collectors.doctor.collector import DoctorCollector
from gpuwarden.collectors.doctor.settings import DoctorSettings

__all__ = ["DoctorCollector", "DoctorSettings"]
