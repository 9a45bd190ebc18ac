"""Settings of the `network` collector (config section `collectors.network`)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from gpuwarden.agent.registry import CollectorSettings
from gpuwarden.config_base import StrictModel

# Sub-millisecond buckets for peers in one rack, up to a second for a peer across a WAN or a SYN retry.
DEFAULT_RTT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
MAX_PEERS = 64  # one label value per peer: keep the series count bounded


class PeerSettings(StrictModel):
    name: str = Field(
        description="label value for this peer (letters, digits, '.', '_', '-'), e.g. zk-1 or node-a07",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
    )
    host: str = Field(description="host name or IP address to connect to", min_length=1)
    port: int = Field(
        description="TCP port, e.g. 2181 for ZooKeeper or the inference endpoint's port", ge=1, le=65535
    )


class NetworkSettings(CollectorSettings):
    interface_exclude: str = Field(
        r"^(veth|docker|br-|cali|flannel|cni|virbr)",
        description="regular expression; matching interfaces are not exported (container links churn)",
    )
    expected_interfaces: list[str] = Field(
        default_factory=list,
        description="interfaces that must exist with operstate up; otherwise network health is UNHEALTHY",
    )
    infiniband_expected_active_ports: int = Field(
        0,
        ge=0,
        description="minimum number of InfiniBand/RoCE ports in state ACTIVE and LinkUp; fewer is UNHEALTHY",
    )
    # Ethernet links run at a bit error rate near 1e-12; one packet in a thousand lost to errors means a bad
    # cable, optic or switch port, and costs an all-reduce far more than the share suggests.
    error_ratio_max: float = Field(
        0.001, ge=0, le=1, description="error-packet share over one interval above which health is DEGRADED"
    )
    peers: list[PeerSettings] = Field(
        default_factory=list,
        max_length=MAX_PEERS,
        description="peers to probe by TCP connect each cycle (other nodes, ZooKeeper, inference endpoint)",
    )
    probe_timeout: float = Field(
        1.0, gt=0, le=30, description="seconds before a TCP connect counts as timeout"
    )
    probes_per_cycle: int = Field(
        3, ge=1, le=20, description="TCP connects per peer and cycle (histogram samples)"
    )
    rtt_buckets: list[float] = Field(
        default_factory=lambda: list(DEFAULT_RTT_BUCKETS),
        min_length=1,
        max_length=30,
        description="upper bounds, in seconds, of the peer round-trip-time histogram buckets",
    )

    @field_validator("interface_exclude")
    @classmethod
    def _regex(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as err:
            raise ValueError(f"not a regular expression: {err}") from None
        return v

    @field_validator("rtt_buckets")
    @classmethod
    def _buckets(cls, v: list[float]) -> list[float]:
        if any(b <= 0 for b in v) or any(a >= b for a, b in zip(v, v[1:], strict=False)):
            raise ValueError("must be positive and strictly increasing")
        return v

    @model_validator(mode="after")
    def _unique_peers(self) -> NetworkSettings:
        names = [p.name for p in self.peers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"peers: duplicate name(s) {', '.join(dupes)}")
        if self.probe_timeout * self.probes_per_cycle >= self.timeout:
            raise ValueError("probe_timeout * probes_per_cycle must be less than timeout")
        return self
