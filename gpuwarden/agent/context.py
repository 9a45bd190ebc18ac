"""From the whole config to what each part is given: a collector's settings and its explicit dependencies.

The one place that reads across sections on the way to building collectors, so that no collector ever
holds the whole `AgentConfig` (the zookeeper collector is given `fleet.hosts`, the node collector its
embedded doctor, every collector the paths and a logger).
"""

from __future__ import annotations

import logging
from typing import Any

from gpuwarden.agent.registry import Collector, CollectorContext, build
from gpuwarden.config import AgentConfig
from gpuwarden.doctor.metrics import DoctorExporter
from gpuwarden.doctor.run import DoctorInputs


def doctor_inputs(config: AgentConfig, **options: Any) -> DoctorInputs:
    """The `doctor:` section plus the interfaces and ports the network collector expects up."""
    network = config.collector_settings("network")
    return DoctorInputs(
        settings=config.doctor,
        paths=config.paths.paths(),
        expected_interfaces=tuple(network.expected_interfaces),
        expected_ib_ports=network.infiniband_expected_active_ports,
        **options,
    )


def collector_context(config: AgentConfig, log: logging.Logger) -> CollectorContext:
    def doctor(nvml_deadline: float) -> Collector:
        # No checksums here: hashing 100 GB every few minutes is no probe (`gpuwarden doctor` does it).
        return DoctorExporter(doctor_inputs(config, checksums=False), nvml_deadline=nvml_deadline)

    return CollectorContext(
        paths=config.paths.paths(),
        log=log,
        fleet_hosts=tuple(config.fleet.hosts),
        doctor=doctor if config.doctor.export_metrics else None,
    )


def build_collector(name: str, config: AgentConfig, log: logging.Logger) -> Collector:
    """The collector `name` as the daemon builds it: its own settings and its dependencies."""
    return build(name, config.collector_settings(name), collector_context(config, log.getChild(name)))
