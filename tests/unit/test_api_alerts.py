"""The webhook payload model on recorded Alertmanager deliveries, and where each alert is handled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from gpuwarden.agent.alerts import Delivery, FleetView, WebhookPayload, decide, owner, to_alert
from gpuwarden.agent.forward import FleetUnreachable, endpoint_url
from gpuwarden.fleet.registration import serverset_member

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "alertmanager"


def payload(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_a_recorded_firing_delivery_parses_into_the_engines_alert() -> None:
    p = WebhookPayload.model_validate_json(payload("webhook-v4-firing.json"))
    (alert,) = p.alerts
    engine_view = to_alert(alert, p.receiver)
    assert engine_view.alertname == "InferenceP99LatencyHigh" and engine_view.status == "firing"
    assert engine_view.fingerprint == "7e08ccc7426dd458"
    assert engine_view.starts_at == "2026-12-01T02:52:30.524961Z"
    assert engine_view.receiver == "gpuwarden-agents"
    assert alert.annotations["description"].startswith("$(reboot)")  # data, never a command


def test_a_recorded_resolved_delivery_keeps_the_occurrence_of_the_firing_one() -> None:
    firing = WebhookPayload.model_validate_json(payload("webhook-v4-firing.json")).alerts[0]
    resolved = WebhookPayload.model_validate_json(payload("webhook-v4-resolved.json")).alerts[0]
    assert resolved.status == "resolved"
    assert (resolved.fingerprint, resolved.startsAt) == (firing.fingerprint, firing.startsAt)


def test_fields_of_newer_alertmanagers_are_tolerated() -> None:
    p = WebhookPayload.model_validate_json(payload("webhook-v4-0.34-fields.json"))
    assert p.alerts[0].labels["gpu"] == "3"


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"version": "3"}, "version"),
        ({"status": "pending"}, "status"),
        ({"alerts": "all"}, "alerts"),
        ({"alerts": [{"status": "firing"}]}, "alerts.0.labels"),
        ({"receiver": 7}, "receiver"),
    ],
)
def test_a_payload_that_is_not_version_4_of_the_webhook_is_refused(change: dict, complaint: str) -> None:
    data = {**json.loads(payload("webhook-v4-firing.json")), **change}
    with pytest.raises(ValidationError) as err:
        WebhookPayload.model_validate(data)
    assert any(".".join(map(str, e["loc"])).startswith(complaint) for e in err.value.errors())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("fingerprint", "../../etc"),
        ("fingerprint", ""),
        ("startsAt", "yesterday"),
        ("labels", {"instance": "gpu-1"}),  # no alertname
        ("labels", {"alertname": "A", "gpu": 3}),  # label values are strings
    ],
)
def test_an_alert_with_a_bad_field_is_refused(field: str, value: object) -> None:
    data = json.loads(payload("webhook-v4-firing.json"))
    data["alerts"][0][field] = value
    with pytest.raises(ValidationError):
        WebhookPayload.model_validate(data)


@pytest.mark.parametrize(
    ("labels", "node"),
    [
        ({"node": "gpu-3", "instance": "10.0.0.9:9837"}, "gpu-3"),
        ({"instance": "gpu-17:9400"}, "gpu-17"),
        ({"instance": "gpu-17"}, "gpu-17"),
        ({"instance": "gpu-17.dc1.example:9837"}, "gpu-17.dc1.example"),
        ({"instance": "[fd00::17]:9837"}, "fd00::17"),
        ({"instance": "fd00::17"}, "fd00::17"),
        ({"job": "gpuwarden"}, None),
        ({"instance": ""}, None),
    ],
)
def test_the_node_an_alert_is_about_comes_from_its_node_or_instance_label(
    labels: dict[str, str], node: str | None
) -> None:
    assert owner(labels) == node


SCALE = {"playbook": "scale_signal"}  # a fleet-wide playbook: its alerts go to the leader
FLEET = FleetView(frozenset({"gpu-1", "gpu-2", "gpu-3"}), leader="gpu-2")


@pytest.mark.parametrize(
    ("labels", "me", "fleet", "hops", "expected"),
    [
        ({"instance": "gpu-1:9837"}, "gpu-1", FLEET, 0, ("local", "gpu-1", False)),
        ({"instance": "gpu-1.dc1.example:9837"}, "gpu-1", FLEET, 0, ("local", "gpu-1", False)),
        ({"instance": "gpu-3:9837"}, "gpu-1", FLEET, 0, ("forward", "gpu-3", False)),
        ({"instance": "gpu-3.dc1.example:9837"}, "gpu-1", FLEET, 0, ("forward", "gpu-3", False)),
        ({"instance": "gpu-3:9837"}, "gpu-1", FLEET, 1, ("drop", "gpu-3", False)),  # hop limit
        ({"instance": "gpu-9:9837"}, "gpu-1", FLEET, 0, ("drop", "gpu-9", False)),  # not registered
        ({"instance": "gpu-3:9837"}, "gpu-1", None, 0, ("drop", "gpu-3", False)),  # no fleet
        ({"job": "gpuwarden"}, "gpu-1", FLEET, 0, ("forward", "gpu-2", False)),  # fleet-wide: leader
        ({"job": "gpuwarden"}, "gpu-2", FLEET, 0, ("local", "gpu-2", False)),
        ({"job": "gpuwarden"}, "gpu-1", FleetView(FLEET.nodes, None), 0, ("drop", None, True)),
        ({"job": "gpuwarden"}, "gpu-1", None, 0, ("local", "gpu-1", False)),  # alone: it is the fleet
        ({"job": "gpuwarden"}, "gpu-1", FLEET, 1, ("drop", "gpu-2", False)),
        (
            {"instance": "gpu-1:9837", "playbook": "scale_signal"},
            "gpu-1",
            FLEET,
            0,
            ("forward", "gpu-2", False),
        ),
        (
            {"instance": "gpu-3:9837", "playbook": "scale_signal"},
            "gpu-2",
            FLEET,
            0,
            ("local", "gpu-2", False),
        ),
    ],
)
def test_each_alert_is_handled_here_forwarded_to_its_owner_or_dropped_with_a_reason(
    labels: dict[str, str], me: str, fleet: FleetView | None, hops: int, expected: tuple
) -> None:
    d = decide({"alertname": "A", **labels}, me, fleet, hops, max_hops=1)
    assert isinstance(d, Delivery) and d.reason
    assert (d.action, d.node, d.retry) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://gpu-3:9837", "http://gpu-3:9837"),
        ("https://10.0.0.3:9443", "https://10.0.0.3:9443"),
        ("http://[fd00::3]:9837", "http://[fd00::3]:9837"),
    ],
)
def test_the_forwarding_address_is_read_back_from_the_serverset_member_the_agent_writes(
    url: str, expected: str
) -> None:
    assert endpoint_url(serverset_member(url)) == expected


@pytest.mark.parametrize("data", [b"", b"{}", b'{"serviceEndpoint": {"host": "", "port": 1}}', b"\xff"])
def test_a_serverset_entry_that_names_no_endpoint_is_a_clear_error(data: bytes) -> None:
    with pytest.raises(FleetUnreachable):
        endpoint_url(data)
