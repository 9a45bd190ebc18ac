"""From the whole config to what each part is given: a collector's settings and its explicit dependencies.

The one place that reads across sections on the way to building collectors, so that no collector ever
holds the whole `AgentConfig` (the zookeeper collector is given `fleet.hosts`, the doctor what the GPU,
network and node sections expect of the node, every collector the paths and a logger).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from gpuwarden.agent.registry import Collector, CollectorContext, Expectations, build
from gpuwarden.config import AgentConfig

if TYPE_CHECKING:
    from gpuwarden.collectors.doctor.run import DoctorInputs


def expectations(config: AgentConfig) -> Expectations:
    network, node = config.collector_settings("network"), config.collector_settings("node")
    return Expectations(
        interfaces=tuple(network.expected_interfaces),
        ib_ports=network.infiniband_expected_active_ports,
        gpus=config.collector_settings("gpu").expected_gpus,
        volumes=tuple((d.path, int(d.min_free)) for d in node.disk_paths if d.min_free is not None),
    )


def collector_context(config: AgentConfig, log: logging.Logger) -> CollectorContext:
    return CollectorContext(
        paths=config.paths.paths(),
        log=log,
        fleet_hosts=tuple(config.fleet.hosts),
        expected=expectations(config),
    )


def doctor_inputs(config: AgentConfig, **options: Any) -> DoctorInputs:
    """What `gpuwarden doctor` checks: `collectors.doctor` plus what other sections expect of the node."""
    from gpuwarden.collectors.doctor.host import Volume
    from gpuwarden.collectors.doctor.run import DoctorInputs

    expected = expectations(config)
    return DoctorInputs(
        settings=config.collector_settings("doctor"),
        paths=config.paths.paths(),
        expected_interfaces=expected.interfaces,
        expected_ib_ports=expected.ib_ports,
        expected_gpus=expected.gpus,
        volumes=tuple(Volume(path, min_free) for path, min_free in expected.volumes),
        **options,
    )


def build_collector(name: str, config: AgentConfig, log: logging.Logger) -> Collector:
    """The collector `name` as the daemon builds it: its own settings and its dependencies."""
    return build(name, config.collector_settings(name), collector_context(config, log.getChild(name)))
