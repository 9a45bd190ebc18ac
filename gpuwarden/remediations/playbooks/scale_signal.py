"""`scale_signal`: tell the autoscaler that the fleet needs more or fewer inference nodes.

The decision is the fleet's, not one node's: the alerts that trigger it (`InferenceP99LatencyHigh`: p99
above the SLO, seed 200 ms; `GpuFleetUnderutilized`: fleet GPU utilization under 30 % for 10 minutes; their
thresholds live in the alert rules) are fleet-wide, so only the elected leader (gpuwarden/fleet/election.py)
acts on them; on any other agent the run is skipped with the leader's name. The decision is written, in
this order, to:

- the znode `/gpuwarden/<cluster>/scale` (JSON: direction, at, node, reason, run), compare-and-set on its
  version: a leader deposed a moment ago cannot overwrite its successor's decision, and a new leader
  reads the last decision and its time from it, so the cool-down survives a leader change;
- the autoscaler's webhook (`webhook_url`, POST JSON, optional bearer token), when configured;
- a file (`signal_file`, JSON, written atomically), when configured, for an autoscaler that polls files;
- `gpuwarden_scale_signal{direction}` = 1 on the leader while the decision is younger than the cool-down.

One decision per `decision_cooldown_s`, in either direction (a flapping latency must not scale up and
down every minute). Without a fleet the node decides alone, keeping the last decision in `signal_file`.
Runbook: docs/runbooks/scale_signal.md.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field

from gpuwarden.remediations.registry import (
    Check,
    FleetView,
    Plan,
    PlaybookContext,
    Sample,
    Step,
    register_playbook,
)
from gpuwarden.remediations.request import Request
from gpuwarden.remediations.settings import PlaybookSettings
from gpuwarden.remediations.targets import HOOK_MAX_BODY, TargetError, write_atomic

DIRECTIONS = ("up", "down")


class ScaleSignalSettings(PlaybookSettings):
    up_alerts: list[str] = Field(
        default_factory=lambda: ["InferenceP99LatencyHigh"], description="alerts that mean: scale up"
    )
    down_alerts: list[str] = Field(
        default_factory=lambda: ["GpuFleetUnderutilized"], description="alerts that mean: scale down"
    )
    decision_cooldown_s: float = Field(
        600.0, gt=0, description="at most one fleet decision per this many seconds, in either direction"
    )
    webhook_url: str | None = Field(
        None, pattern=r"^https?://", description="the autoscaler's hook; receives the decision as JSON"
    )
    webhook_token_file: str | None = Field(None, description="file holding a bearer token for the hook")
    webhook_timeout_s: float = Field(10.0, gt=0, description="how long the hook may take to answer")
    signal_file: str | None = Field(
        None, description="file the decision is written to (JSON, atomically) for an autoscaler that polls"
    )


@register_playbook("scale_signal", ScaleSignalSettings)
class ScaleSignal:
    name = "scale_signal"

    def __init__(self, settings: ScaleSignalSettings, ctx: PlaybookContext) -> None:
        self.settings = settings
        self.ctx = ctx
        self.emitted: dict[str, Any] | None = None  # the last decision this node wrote, for the gauge

    def direction(self, request: Request) -> str | None:
        if request.labels.get("direction") in DIRECTIONS:
            return request.labels["direction"]
        alertname = request.labels.get("alertname", "")
        if alertname in self.settings.up_alerts:
            return "up"
        if alertname in self.settings.down_alerts:
            return "down"
        return None

    def last_decision(self) -> dict[str, Any] | None:
        fleet = self.ctx.fleet()
        if fleet is not None:
            return _read(fleet)[0]
        if self.settings.signal_file and Path(self.settings.signal_file).exists():
            return dict(json.loads(Path(self.settings.signal_file).read_text(encoding="utf-8")))
        return self.emitted

    def still_needed(self, request: Request) -> Check:
        direction = self.direction(request)
        if direction is None:
            return Check(False, "no direction: neither a `direction` label nor an up/down alert")
        fleet = self.ctx.fleet()
        if fleet is not None and not fleet.is_leader:
            return Check(False, "not the fleet leader: only the leader emits the fleet's scale decision")
        last = self.last_decision()
        if last is not None:
            age = time.time() - float(last.get("at", 0))
            if age < self.settings.decision_cooldown_s:
                return Check(
                    False,
                    f"deduplicated: the fleet decided {last.get('direction')} {age:.0f}s ago "
                    f"({last.get('node', '?')}); one decision per {self.settings.decision_cooldown_s:g}s",
                )
        return Check(True, f"scale {direction}: {request.reason}")

    def plan(self, request: Request) -> Plan:
        direction = self.direction(request)
        if direction is None:
            return Plan(refusal="no scale direction in the request")
        fleet = self.ctx.fleet()
        node = fleet.client.node if fleet is not None else "local"
        decision = {
            "direction": direction, "at": time.time(), "node": node, "reason": request.reason,
            "run": request.run_id,
        }  # fmt: skip
        s = self.settings
        where = f"{fleet.client.root}/scale" if fleet is not None else "this node (no fleet)"
        steps = [
            Step(
                "decide",
                f"scale {direction} as the fleet's decision in {where}",
                lambda: self._decide(decision),
            )
        ]
        if s.webhook_url:
            steps.append(
                Step("webhook", f"POST the decision to {s.webhook_url}", lambda: self._post(decision))
            )
        if s.signal_file:
            path = s.signal_file
            steps.append(
                Step(
                    "file",
                    f"write the decision to {path}",
                    lambda: write_atomic(path, json.dumps(decision) + "\n"),
                )
            )
        return Plan(tuple(steps))

    def _decide(self, decision: dict[str, Any]) -> None:
        fleet = self.ctx.fleet()
        if fleet is not None:
            if not fleet.is_leader:
                raise TargetError("no longer the fleet leader: the new leader decides")
            last, version = _read(fleet)
            if (
                last is not None
                and decision["at"] - float(last.get("at", 0)) < self.settings.decision_cooldown_s
            ):
                raise TargetError(f"{last.get('node')} decided {last.get('direction')} meanwhile")
            _write(fleet, decision, version)
        self.emitted = decision

    def _post(self, decision: dict[str, Any]) -> None:
        """POST the decision; the autoscaler's answer is read through httpread (one deadline, a cap), so a
        hook that hangs or answers forever fails this step instead of holding the engine's thread."""
        from gpuwarden import httpread  # when used: http.client loads ssl (bench/footprint.py)
        from gpuwarden.httpread import Limits

        s = self.settings
        assert s.webhook_url is not None
        headers = {"Content-Type": "application/json"}
        if s.webhook_token_file:
            headers["Authorization"] = (
                "Bearer " + Path(s.webhook_token_file).read_text(encoding="utf-8").strip()
            )
        fleet = self.ctx.fleet()
        body = {**decision, "cluster": fleet.client.settings.cluster if fleet is not None else None}
        limits = Limits(
            s.webhook_timeout_s,
            HOOK_MAX_BODY,
            deadline_key="remediation.playbooks.scale_signal.webhook_timeout_s",
            max_body_key="the cap on a hook's answer",
        )
        try:
            data = json.dumps(body).encode()
            reply = httpread.request("POST", s.webhook_url, limits, headers=headers, body=data)
        except httpread.ReadError as err:
            raise TargetError(f"autoscaler hook: {err.kind}: {err.detail}") from None
        if reply.status >= 300:
            raise TargetError(f"autoscaler hook: HTTP {reply.status}")

    def verify(self) -> Check:
        if self.emitted is None:
            return Check(False, "no decision was recorded")
        last = self.last_decision()
        if last is None or last.get("run") != self.emitted["run"]:
            return Check(False, "the recorded decision is not ours (another leader wrote after us)")
        return Check(True, f"scale {self.emitted['direction']} recorded")

    def evidence(self) -> Mapping[str, Any]:
        fleet = self.ctx.fleet()
        return {
            "leader": fleet.is_leader if fleet is not None else None,
            "last_decision": self.last_decision(),
        }

    def samples(self) -> list[Sample]:
        """1 for the direction this node decided, while it is younger than the cool-down."""
        fleet = self.ctx.fleet()
        if fleet is not None and not fleet.is_leader:
            return []
        current = self.emitted
        fresh = current is not None and time.time() - current["at"] < self.settings.decision_cooldown_s
        return [
            ("gpuwarden_scale_signal", float(fresh and current is not None and current["direction"] == d),
             {"direction": d})
            for d in DIRECTIONS
        ]  # fmt: skip


def _path(fleet: FleetView) -> str:
    return f"{fleet.client.root}/scale"


def _read(fleet: FleetView) -> tuple[dict[str, Any] | None, int]:
    """The fleet's last decision and the znode version (-1: none yet)."""
    # kazoo and requests load only when a decision is made: the config schema imports every playbook.
    from kazoo.exceptions import KazooException, NoNodeError
    from kazoo.handlers.threading import KazooTimeoutError

    try:
        data, stat = fleet.client.zk.get(_path(fleet))
    except NoNodeError:
        return None, -1
    except (KazooException, KazooTimeoutError) as err:
        raise TargetError(f"cannot read the fleet's last decision: {type(err).__name__}") from None
    try:
        return dict(json.loads(data)), stat.version
    except ValueError:
        return None, stat.version  # unreadable: the next decision replaces it


def _write(fleet: FleetView, decision: Mapping[str, Any], version: int) -> None:
    from kazoo.exceptions import BadVersionError, KazooException, NodeExistsError
    from kazoo.handlers.threading import KazooTimeoutError

    data = json.dumps(decision, sort_keys=True).encode()
    try:
        if version < 0:
            fleet.client.zk.create(_path(fleet), data, makepath=True)
        else:
            fleet.client.zk.set(_path(fleet), data, version=version)
    except (BadVersionError, NodeExistsError):
        raise TargetError("another node wrote a decision at the same time") from None
    except (KazooException, KazooTimeoutError) as err:
        raise TargetError(f"cannot write the fleet's decision: {type(err).__name__}") from None
