"""The remediation API under /v1 (docs/api.md): the Alertmanager webhook, manual runs, runs, pause/resume,
reset (re-arm an exhausted playbook, or leave storm mode).

Every route needs `Authorization: Bearer <token>` from `api.token_file` (read-only tokens from
`api.read_token_file` may only GET). The check is made here rather than by the HTTP layer's `Bearer`
policy because the API needs to know *who* called (the token's name goes into the audit log as the
operator) and writes a log line with the peer address for every refused token. Every answer is JSON
with a reason; no handler lets an exception through (the fuzz test holds it to that).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import ValidationError

from gpuwarden.agent import alerts as webhook
from gpuwarden.agent.api_auth import ApiSettings, Identity, TokenFileError, Tokens
from gpuwarden.agent.api_models import PauseBody, RemediationBody, ResetBody, problems
from gpuwarden.agent.api_runs import run_detail, run_list
from gpuwarden.agent.api_webhook import deliver
from gpuwarden.agent.forward import HOPS_HEADER, Directory, ZkDirectory
from gpuwarden.agent.http import Request, Response, Route, error_response, json_response
from gpuwarden.config import AgentConfig, ConfigError
from gpuwarden.remediations.rails import ALL
from gpuwarden.remediations.registry import PLAYBOOKS
from gpuwarden.remediations.request import Request as RunRequest

if TYPE_CHECKING:  # the engine (and kazoo with it) loads only when remediation is enabled
    from gpuwarden.fleet.member import FleetMember
    from gpuwarden.remediations.engine import Engine

JSON = "application/json"
Handler = Callable[[Request, Identity], Response]


def build(
    config: AgentConfig,
    engine: Callable[[], Engine | None],
    fleet: Callable[[], FleetMember | None],
    log: logging.Logger,
) -> Api | None:
    """The API when `api.token_file` is set (None otherwise: no /v1 route exists); a token file that
    cannot be used is a ConfigError (exit 78 at start)."""
    if config.api.token_file is None:
        return None

    def directory() -> ZkDirectory | None:
        member = fleet()
        return ZkDirectory(member) if member is not None else None

    try:
        return Api(config.api, config.fleet.node_name(), engine, directory, log)
    except TokenFileError as err:
        raise ConfigError([str(err)]) from None


class Api:
    def __init__(
        self,
        settings: ApiSettings,
        node: str,
        engine: Callable[[], Engine | None],
        directory: Callable[[], Directory | None] = lambda: None,
        log: logging.Logger | None = None,
    ) -> None:
        self.settings = settings
        self.node = node
        self.engine = engine
        self.directory = directory
        self.log = log or logging.getLogger("gpuwarden.api")
        self.tokens = Tokens.from_settings(settings)
        self._refused = _Throttle(per_second=1.0)

    def reload(self, config: AgentConfig) -> None:
        """New tokens and settings on SIGHUP (a rotated token works at once); a config without
        `token_file` now refuses every token (the routes themselves go at the next restart)."""
        try:
            tokens = Tokens.from_settings(config.api) if config.api.token_file else Tokens({}, {})
        except TokenFileError as err:
            self.log.error("api: %s; keeping the previous tokens", err)
            return
        self.settings, self.node, self.tokens = config.api, config.fleet.node_name(), tokens

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/v1/alerts", self._guard(self.alerts, write=True)),
            Route("POST", "/v1/remediations/{playbook}", self._guard(self.remediate, write=True)),
            Route("GET", "/v1/runs", self._guard(self.runs, write=False)),
            Route("GET", "/v1/runs/{run}", self._guard(self.run, write=False)),
            Route("POST", "/v1/pause", self._guard(self.pause, write=True)),
            Route("POST", "/v1/resume", self._guard(self.resume, write=True)),
            Route("POST", "/v1/reset", self._guard(self.reset, write=True)),
        ]

    # -- the checks every route shares ---------------------------------------------------------------
    def _guard(self, handler: Handler, write: bool) -> Callable[[Request], Response]:
        def guarded(request: Request) -> Response:
            identity = self.tokens.identify(request.headers)
            if identity is None:
                if self._refused.allow():
                    self.log.warning(
                        "api: refused %s %s from %s: missing or wrong bearer token",
                        request.method, request.path, request.peer,
                    )  # fmt: skip
                return error_response(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
            if write and not identity.write:
                return error_response(403, f"token {identity.name} is read-only")
            if request.body:
                media = request.headers.get("content-type", JSON).split(";")[0].strip().lower()
                if media != JSON:
                    return error_response(415, f"body must be {JSON}")
            return handler(request, identity)

        return guarded

    def _engine_or_404(self, playbook: str) -> tuple[Engine | None, Response | None]:
        engine = self.engine()
        if engine is None:
            return None, error_response(404, "remediation is not enabled on this agent")
        if playbook not in engine.playbooks:
            known = ", ".join(sorted(engine.playbooks)) or "none"
            what = "not enabled on this node" if playbook in PLAYBOOKS else "unknown"
            return None, error_response(404, f"playbook {playbook} is {what} (enabled here: {known})")
        return engine, None

    # -- manual runs ---------------------------------------------------------------------------------
    def remediate(self, request: Request, who: Identity) -> Response:
        try:
            body = RemediationBody.model_validate_json(request.body or b"null")
        except ValidationError as err:
            return error_response(400, problems(err))
        playbook = request.params["playbook"]
        engine, missing = self._engine_or_404(playbook)
        if engine is None:
            return missing or error_response(404, "remediation is not enabled on this agent")
        target = engine.playbooks[playbook].target
        if body.target is not None and body.target != target:
            return error_response(400, f"target: {playbook} acts on {target} on this node, not {body.target}")
        paused = paused_reason(engine, playbook)
        if paused is not None:
            return error_response(409, f"{playbook} is paused: {paused}")
        run = RunRequest(
            playbook=playbook, source="manual", actor=f"user:{who.name}", reason=body.reason,
            labels=body.labels(), dry_run=body.dry_run,
        )  # fmt: skip
        submitted = engine.submit(run)
        if submitted.accepted:
            self.log.info("api: %s asked for %s (run %s): %s", who.name, playbook, run.run_id, body.reason)
            answer = {"run": run.run_id, "playbook": playbook, "target": target, "dry_run": body.dry_run}
            return json_response(202, {**answer, "status": "queued", "url": f"/v1/runs/{run.run_id}"})
        if submitted.reason.startswith("queue full"):
            return error_response(429, submitted.reason, {"Retry-After": "30"})
        return error_response(409, submitted.reason)

    def runs(self, request: Request, who: Identity) -> Response:
        engine = self.engine()
        records = engine.audit_records() if engine else []
        paused = dict(engine.rails.paused) if engine else {}
        status, body = run_list(records, request.query, paused)
        return json_response(status, body)

    def run(self, request: Request, who: Identity) -> Response:
        engine = self.engine()
        records = engine.audit_records() if engine else []
        status, body = run_detail(records, request.params["run"])
        return json_response(status, body)

    def pause(self, request: Request, who: Identity) -> Response:
        return self._pause_or_resume(request, who, pause=True)

    def resume(self, request: Request, who: Identity) -> Response:
        return self._pause_or_resume(request, who, pause=False)

    def _pause_or_resume(self, request: Request, who: Identity, pause: bool) -> Response:
        try:
            body = PauseBody.model_validate_json(request.body or b"null")
        except ValidationError as err:
            return error_response(400, problems(err))
        playbook = body.playbook or ALL
        if body.playbook is not None:
            engine, missing = self._engine_or_404(body.playbook)
        else:
            engine, missing = self.engine(), None
        if engine is None:
            return missing or error_response(404, "remediation is not enabled on this agent")
        actor = f"user:{who.name}"
        if pause:
            engine.pause(body.reason, actor, playbook)
        else:
            engine.resume(actor, playbook, reason=body.reason)
        verb = "paused" if pause else "resumed"
        self.log.warning("api: %s %s %s: %s", who.name, verb, playbook, body.reason)
        return json_response(200, {"status": verb, "playbook": playbook, "paused": dict(engine.rails.paused)})

    def reset(self, request: Request, who: Identity) -> Response:
        """Re-arm an exhausted playbook, or (no playbook) leave storm mode. Only what is stuck is reset: a
        reset erases safety counters, so one asked for a playbook that still has budget is a 409."""
        try:
            body = ResetBody.model_validate_json(request.body or b"null")
        except ValidationError as err:
            return error_response(400, problems(err))
        if body.playbook is not None:
            engine, missing = self._engine_or_404(body.playbook)
        else:
            engine, missing = self.engine(), None
        if engine is None:
            return missing or error_response(404, "remediation is not enabled on this agent")
        playbook = body.playbook or ALL
        if playbook == ALL and engine.rails.storm is None:
            return error_response(409, "the engine is not in storm mode: nothing to reset")
        if playbook != ALL and playbook not in exhausted(engine):
            return error_response(409, f"{playbook} is not exhausted: nothing to reset")
        engine.reset(playbook, f"user:{who.name}", reason=body.reason)
        self.log.warning("api: %s reset %s: %s", who.name, playbook, body.reason)
        answer = {"status": "reset", "playbook": playbook, "storm": engine.rails.storm}
        return json_response(200, {**answer, "exhausted": exhausted(engine)})

    # -- the Alertmanager webhook --------------------------------------------------------------------
    def alerts(self, request: Request, who: Identity) -> Response:
        hops_text = request.headers.get(HOPS_HEADER, "0")
        if not (hops_text.isascii() and hops_text.isdigit() and int(hops_text) <= 16):
            return error_response(400, f"{HOPS_HEADER} must be a number of hops from 0 to 16")
        try:
            payload = webhook.WebhookPayload.model_validate_json(request.body or b"null")
        except ValidationError as err:
            return error_response(400, problems(err))
        if self.settings.receivers and payload.receiver not in self.settings.receivers:
            return error_response(400, f"receiver {payload.receiver!r} is not in api.receivers")
        status, body = deliver(self, payload, int(hops_text))
        return json_response(status, body)


def exhausted(engine: Engine) -> dict[str, str]:
    """Playbook → why, for the playbooks whose attempt budget ran out on their target."""
    return {
        p: h.exhausted
        for (p, target), h in list(engine.rails.histories.items())  # one copy: the engine adds entries
        if h.exhausted and p in engine.playbooks and engine.playbooks[p].target == target
    }


def paused_reason(engine: Engine, playbook: str) -> str | None:
    for name in (ALL, playbook):
        if name in engine.rails.paused:
            return engine.rails.paused[name] or "no reason given"
    return None


class _Throttle:
    """At most `per_second` log lines on average (bursts of 10): a token flood must not flood the log."""

    def __init__(self, per_second: float, burst: float = 10.0) -> None:
        self.rate, self.burst = per_second, burst
        self.allowance, self.last = burst, time.monotonic()
        self._lock = threading.Lock()

    def allow(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self.allowance = min(self.burst, self.allowance + (now - self.last) * self.rate)
            self.last = now
            if self.allowance < 1:
                return False
            self.allowance -= 1
            return True
