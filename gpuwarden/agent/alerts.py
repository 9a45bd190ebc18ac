"""The Alertmanager webhook (payload version 4) and where each of its alerts is handled. Pure: no I/O.

Alertmanager can point at every agent behind one DNS name: whichever agent takes the delivery decides per
alert (`decide`): an alert whose `node` label, or the host part of its `instance` label, names this node
is handled here; one that names another registered node is passed on to that node's agent; one that names
no node (a fleet-wide signal, such as GpuFleetUnderutilized) goes to the fleet leader. A forwarded
delivery carries a hop count, so two agents that disagree about the fleet cannot bounce an alert forever.

The payload is validated as data only: label and annotation text is never executed, templated or put
into a command; it reaches the audit log as values. Unknown fields are tolerated (Alertmanager adds
fields across versions: `notification_reason` in 0.32, `routeLabels` in 0.34).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from gpuwarden.remediations.triggers import Alert

# Playbooks whose decision is the fleet's, taken by the elected leader only (scale_signal.py): their alerts
# go to the leader even when they name a node (InferenceP99LatencyHigh on one saturated node).
FLEET_WIDE_PLAYBOOKS = frozenset({"scale_signal"})
MAX_ALERTS = 1000  # a group larger than this should use `max_alerts` on the receiver
Text = Annotated[str, StringConstraints(max_length=4096)]
LabelName = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Labels = Annotated[dict[LabelName, Text], Field(max_length=256)]


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


class WebhookAlert(_Tolerant):
    status: Literal["firing", "resolved"]
    labels: Labels
    annotations: Labels = Field(default_factory=dict)
    startsAt: Annotated[str, StringConstraints(min_length=1, max_length=64)]  # noqa: N815 - the wire name
    endsAt: Annotated[str, StringConstraints(max_length=64)] = ""  # noqa: N815
    fingerprint: Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z]{1,64}$")]
    generatorURL: Text = ""  # noqa: N815

    @field_validator("startsAt")
    @classmethod
    def _timestamp(cls, v: str) -> str:
        datetime.fromisoformat(v.replace("Z", "+00:00"))  # RFC 3339, as Alertmanager writes it
        return v

    @field_validator("labels")
    @classmethod
    def _alertname(cls, v: dict[str, str]) -> dict[str, str]:
        if not v.get("alertname"):
            raise ValueError("every alert needs an alertname label")
        return v


class WebhookPayload(_Tolerant):
    version: Literal["4"]
    status: Literal["firing", "resolved"]
    receiver: Annotated[str, StringConstraints(max_length=256)]
    groupKey: Text = ""  # noqa: N815
    truncatedAlerts: int = Field(0, ge=0)  # noqa: N815
    groupLabels: Labels = Field(default_factory=dict)  # noqa: N815
    commonLabels: Labels = Field(default_factory=dict)  # noqa: N815
    commonAnnotations: Labels = Field(default_factory=dict)  # noqa: N815
    externalURL: Text = ""  # noqa: N815
    alerts: list[WebhookAlert] = Field(max_length=MAX_ALERTS)


def to_alert(alert: WebhookAlert, receiver: str) -> Alert:
    """The engine's view of one alert (it deduplicates on fingerprint + startsAt + status)."""
    return Alert(
        alertname=alert.labels["alertname"],
        status=alert.status,
        fingerprint=alert.fingerprint,
        starts_at=alert.startsAt,
        labels=dict(alert.labels),
        receiver=receiver,
    )


def owner(labels: dict[str, str]) -> str | None:
    """The node an alert is about: its `node` label, else the host of its `instance` label; None when
    neither is there (a fleet-wide alert)."""
    if labels.get("node"):
        return labels["node"]
    instance = labels.get("instance", "")
    if not instance:
        return None
    if instance.startswith("["):  # [v6]:port
        return instance[1:].partition("]")[0] or None
    host, sep, port = instance.rpartition(":")
    if sep and port.isdigit() and host.count(":") == 0:
        return host or None
    return instance


def subject(labels: dict[str, str]) -> str | None:
    """The node that handles an alert: its owner, or None (the leader) for a fleet-wide playbook."""
    return None if labels.get("playbook") in FLEET_WIDE_PLAYBOOKS else owner(labels)


@dataclass(frozen=True)
class FleetView:
    """What the deciding agent knows of the fleet: registered nodes and the leader (None: not elected)."""

    nodes: frozenset[str]
    leader: str | None


@dataclass(frozen=True)
class Delivery:
    action: Literal["local", "forward", "drop"]
    node: str | None  # where it goes (forward) or whom it was about
    reason: str
    retry: bool = False  # dropped for now, but Alertmanager should send it again (answer 5xx)


def same_node(name: str, node: str) -> bool:
    """`gpu-17.dc.example` names node `gpu-17` (the fleet's default node name is the short hostname)."""
    return name == node or name.split(".")[0] == node


def decide(labels: dict[str, str], me: str, fleet: FleetView | None, hops: int, max_hops: int) -> Delivery:
    """Where one alert is handled. `fleet` is None when this agent is in no fleet; `hops` counts how
    often this delivery was forwarded already."""
    about = subject(labels)
    if about is not None and same_node(about, me):
        return Delivery("local", me, "this node")
    if fleet is None:
        if about is None:
            return Delivery("local", me, "fleet-wide alert and no fleet: this agent is the fleet")
        return Delivery("drop", about, f"alert for {about}, not this node ({me}), and no fleet to forward in")
    if about is None:
        if fleet.leader is None:
            return Delivery("drop", None, "fleet-wide alert and no fleet leader elected yet", retry=True)
        if fleet.leader == me:
            return Delivery("local", me, "fleet-wide alert and this node leads the fleet")
        to, why = fleet.leader, f"fleet-wide alert for the leader {fleet.leader}"
    else:
        matches = [n for n in sorted(fleet.nodes) if same_node(about, n)]
        if not matches:
            return Delivery("drop", about, f"node {about} is not registered in the fleet")
        to, why = matches[0], f"alert for {matches[0]}"
    if hops >= max_hops:
        return Delivery("drop", to, f"{why}: hop limit {max_hops} reached, not forwarded again")
    return Delivery("forward", to, why)
