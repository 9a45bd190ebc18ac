"""The `fleet:` section of the agent config: where the ensemble is and how big the remediation budget is."""

from __future__ import annotations

import socket
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from gpuwarden.address import check_zookeeper
from gpuwarden.config_base import StrictModel


def _chroot(value: str) -> str:
    if value and (not value.startswith("/") or value.endswith("/")):
        raise ValueError("must start with / and not end with / (e.g. /prod)")
    return value


class BudgetSettings(StrictModel):
    max_concurrent: int = Field(
        1, ge=1, description="at most this many nodes hold a disruptive-remediation lease at once"
    )
    max_percent: float | None = Field(
        None,
        gt=0,
        le=100,
        description="also at most this share of the registered agents (rounded down, never below 1)",
    )
    acquire_timeout: float = Field(30.0, gt=0, description="seconds to wait for a lease before giving up")
    fail_open_playbooks: list[str] = Field(
        default_factory=list,
        description="playbooks that may run without a lease when ZooKeeper cannot be reached; "
        "every other playbook fails closed",
    )

    def policy(self) -> str:
        """Written on the semaphore node so that agents with different budgets refuse to share it."""
        return f"max_concurrent={self.max_concurrent} max_percent={self.max_percent}"


class FleetSettings(StrictModel):
    enabled: bool = Field(False, description="join the fleet: register, take budget leases, elect a leader")
    hosts: list[Annotated[str, AfterValidator(check_zookeeper)]] = Field(
        default_factory=list, description="ZooKeeper servers as host:port (the voting members)"
    )
    chroot: Annotated[str, AfterValidator(_chroot)] = Field("", description="ZooKeeper chroot, e.g. /prod")
    cluster: str = Field(
        "default",
        pattern=r"^[A-Za-z0-9._-]+$",
        description="fleet name: znodes live under /gpuwarden/<cluster>",
    )
    node: str | None = Field(
        None, pattern=r"^[A-Za-z0-9._-]+$", description="this agent's name in the fleet (default: hostname)"
    )
    session_timeout: float = Field(
        10.0,
        ge=1,
        description="ZooKeeper session timeout in seconds; the server clamps it to [2, 20] x tickTime",
    )
    connect_timeout: float = Field(5.0, gt=0, description="seconds to wait for the first connection")
    budget: BudgetSettings = Field(
        default_factory=BudgetSettings, description="fleet-wide limit on concurrent disruptive remediations"
    )

    @model_validator(mode="after")
    def _hosts_when_enabled(self) -> FleetSettings:
        if self.enabled and not self.hosts:
            raise ValueError("hosts must name at least one ZooKeeper server when enabled is true")
        return self

    def node_name(self) -> str:
        return self.node or socket.gethostname().split(".")[0]

    def connect_string(self) -> str:
        return ",".join(self.hosts) + self.chroot
