"""The webhook's work for one validated delivery: each alert handled here, forwarded, or dropped with why.

Alertmanager retries only 5xx (notify/util.go), so the answer is 5xx only when a retry can help: an owner
that could not be reached, or no fleet leader yet. Everything queued here before that is dropped as a
duplicate when the group comes again (the engine deduplicates on fingerprint + startsAt + status), so a
retry never starts a run twice. Otherwise the answer is 202 when something was queued or forwarded, and
200 when every alert was deliberately left alone (resolved, duplicate, not allow-listed).
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from gpuwarden.agent.alerts import (
    FleetView,
    WebhookAlert,
    WebhookPayload,
    decide,
    same_node,
    subject,
    to_alert,
)
from gpuwarden.agent.forward import FleetUnreachable, forward

if TYPE_CHECKING:
    from gpuwarden.agent.api import Api


def deliver(api: Api, payload: WebhookPayload, hops: int) -> tuple[int, dict[str, Any]]:
    results: list[dict[str, Any]] = []
    onward: dict[str, list[tuple[WebhookAlert, dict[str, Any]]]] = defaultdict(list)
    retry: list[str] = []
    fleet = _Fleet(api)
    for alert in payload.alerts:
        result: dict[str, Any] = {"fingerprint": alert.fingerprint, "alertname": alert.labels["alertname"]}
        results.append(result)
        about = subject(alert.labels)
        try:  # the registry is read once per delivery, and only for an alert about another node
            view = None if about is not None and same_node(about, api.node) else fleet.view()
        except FleetUnreachable as err:
            result.update(outcome="not_forwarded", reason=f"fleet registry unreachable: {err}")
            retry.append(result["reason"])
            continue
        delivery = decide(alert.labels, api.node, view, hops, api.settings.forward_hops)
        if delivery.action == "local":
            result.update(_local(api, alert, payload.receiver))
        elif delivery.action == "forward" and delivery.node is not None:
            onward[delivery.node].append((alert, result))
        else:
            result.update(outcome="dropped", node=delivery.node, reason=delivery.reason)
            if delivery.retry:
                retry.append(delivery.reason)
            api.log.warning("api: alert %s dropped: %s", result["alertname"], delivery.reason)
    for node, items in onward.items():
        retry += _forward(api, payload, node, items, hops)
    outcomes = {r["outcome"] for r in results}
    body: dict[str, Any] = {"node": api.node, "alerts": results}
    if retry:
        body["error"] = f"{len(retry)} alert(s) could not be delivered yet: {retry[0]}"
        return 503, body
    return (202 if outcomes & {"queued", "forwarded"} else 200), body


class _Fleet:
    """The fleet registry as read at most once for one delivery (an unreachable one is not asked again)."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self._read = False
        self._view: FleetView | None = None
        self._error: FleetUnreachable | None = None

    def view(self) -> FleetView | None:
        if not self._read:
            self._read = True
            directory = self.api.directory()
            try:
                self._view = directory.view() if directory is not None else None
            except FleetUnreachable as err:
                self._error = err
        if self._error is not None:
            raise self._error
        return self._view


def _local(api: Api, alert: WebhookAlert, receiver: str) -> dict[str, Any]:
    """Hand one alert to this node's engine: the allow-list, the dedupe and the queue are the engine's;
    the alert's `playbook` label, when present, narrows the allow-listed playbooks to that one."""
    engine = api.engine()
    if engine is None:
        return {"outcome": "ignored", "reason": "remediation is not enabled on this agent"}
    requests, why = engine.alert_triggers.requests(to_alert(alert, receiver))
    wanted = alert.labels.get("playbook")
    if wanted is not None and requests:
        requests = [r for r in requests if r.playbook == wanted]
        if not requests:
            why = f"alert {alert.labels['alertname']} is not allow-listed for playbook {wanted}"
    if not requests:
        return {"outcome": "ignored", "reason": why}
    runs, refused = [], []
    for request in requests:
        submitted = engine.submit(request)
        if submitted.accepted:
            runs.append(request.run_id)
        else:
            refused.append(f"{request.playbook}: {submitted.reason}")
    if runs:
        return {"outcome": "queued", "runs": runs, "reason": "; ".join(refused) or "queued"}
    return {"outcome": "refused", "reason": "; ".join(refused)}


def _forward(
    api: Api, payload: WebhookPayload, node: str, items: list[tuple[WebhookAlert, dict[str, Any]]], hops: int
) -> list[str]:
    """Send `items` to `node`'s agent in one delivery; returns the reasons worth a retry."""
    directory = api.directory()
    body = payload.model_dump(mode="json")
    body["alerts"] = [a.model_dump(mode="json") for a, _ in items]
    try:
        if directory is None:
            raise FleetUnreachable("no fleet")
        url = directory.endpoint(node)
        token, timeout = api.tokens.forward_token, api.settings.forward_timeout_s
        answer = forward(url, body, token, hops + 1, timeout, api.settings.forward_ca_file)
    except FleetUnreachable as err:
        api.log.warning("api: %d alert(s) for %s not forwarded: %s", len(items), node, err)
        for _, result in items:
            result.update(outcome="not_forwarded", node=node, reason=str(err))
        return [f"{node}: {err}"] * len(items) if err.retry else []
    for _, result in items:
        result.update(outcome="forwarded", node=node, reason=answer)
    return []
