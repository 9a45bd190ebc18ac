"""Settings of the `zookeeper` collector (declared in gpuwarden.collectors; the collector is collector.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from gpuwarden.address import check_zookeeper
from gpuwarden.agent.registry import CollectorSettings

Address = Annotated[str, AfterValidator(check_zookeeper)]


class ZookeeperSettings(CollectorSettings):
    enabled: bool = Field(False, description="probe the ZooKeeper ensemble (off: no ensemble is known)")
    ensemble: str = Field("default", min_length=1, description="ensemble name, the `ensemble` label")
    servers: list[Address] = Field(
        default_factory=list,
        description="voting members as host:port; empty means the servers of `fleet.hosts`",
    )
    observers: list[Address] = Field(default_factory=list, description="observers (non-voting) as host:port")
    probe_timeout: float = Field(
        1.0, gt=0, description="seconds allowed for each four-letter-word exchange with one server, in all"
    )
    # A 3.8 `mntr` is about 17 KB; a reply far longer is not a four-letter-word answer.
    max_reply_bytes: int = Field(
        1 << 20,
        ge=64 << 10,
        description="longest four-letter-word reply accepted; a longer one is a bad reply (bytes)",
    )

    @model_validator(mode="after")
    def _distinct(self) -> ZookeeperSettings:
        every = [*self.servers, *self.observers]
        if len(set(every)) != len(every):
            raise ValueError("a server is listed twice in servers/observers")
        return self
