"""A client of the agent's remediation API (docs/api.md), for the on-call CLI and scripts.

Every failure is an `ApiError` whose message is one line an engineer can act on (the agent's own JSON
reason when it gave one), with the exit code the CLI returns for it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from gpuwarden import httpread
from gpuwarden.httpread import Limits, ReadError

EX_SOFTWARE = 1
EX_UNAVAILABLE = 69  # sysexits.h: the agent cannot be reached
EX_NOPERM = 77  # sysexits.h: the token was refused
# The largest answer is GET /v1/runs?limit=1000 (about half a MiB); more is not a gpuwarden agent.
MAX_ANSWER = 32 << 20


class ApiError(Exception):
    def __init__(self, message: str, code: int = EX_SOFTWARE, status: int | None = None) -> None:
        super().__init__(message)
        self.code, self.status = code, status


class Client:
    """`timeout` bounds each exchange as a whole (connect, TLS, headers, body), and answers are capped:
    the same bounded reader (gpuwarden.httpread) as every other read from another program."""

    def __init__(self, url: str, token: str, timeout: float = 10.0, ca_file: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.token = token
        self.limits = Limits(
            timeout,
            MAX_ANSWER,
            ca_file=ca_file,
            deadline_key="--timeout",
            max_body_key="not an agent's answer",
        )

    def remediate(
        self,
        playbook: str,
        reason: str,
        *,
        dry_run: bool = False,
        params: Mapping[str, str] | None = None,
        target: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"reason": reason, "dry_run": dry_run, "params": dict(params or {})}
        if target is not None:
            body["target"] = target
        return self._call("POST", f"/v1/remediations/{playbook}", body)

    def runs(self, limit: int = 50, playbook: str | None = None) -> dict[str, Any]:
        query: dict[str, str] = {"limit": str(limit)}
        if playbook:
            query["playbook"] = playbook
        return self._call("GET", "/v1/runs", params=query)

    def run(self, run_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/runs/{quote(run_id, safe='')}")

    def pause(self, reason: str, playbook: str | None = None) -> dict[str, Any]:
        return self._call("POST", "/v1/pause", {"reason": reason, "playbook": playbook})

    def resume(self, reason: str, playbook: str | None = None) -> dict[str, Any]:
        return self._call("POST", "/v1/resume", {"reason": reason, "playbook": playbook})

    def reset(self, reason: str, playbook: str | None = None) -> dict[str, Any]:
        return self._call("POST", "/v1/reset", {"reason": reason, "playbook": playbook})

    def _call(
        self, method: str, path: str, body: object = None, params: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        url = self.url + path + (f"?{urlencode(params)}" if params else "")
        headers = {"Authorization": f"Bearer {self.token}"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        try:
            reply = httpread.request(method, url, self.limits, headers=headers, body=data)
        except ReadError as err:
            raise ApiError(self._failure(err), EX_UNAVAILABLE) from None
        try:
            answer = reply.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise ApiError(
                f"{self.url} answered {reply.status} without a JSON object: is it a gpuwarden agent?"
            )
        if reply.status >= 400:
            reason = str(answer.get("error") or f"HTTP {reply.status}")
            code = EX_NOPERM if reply.status in (401, 403) else EX_SOFTWARE
            if reply.status == 404 and reason.startswith("no route"):
                reason = f"the agent at {self.url} serves no remediation API (is api.token_file set?)"
            raise ApiError(f"{reason} (HTTP {reply.status})", code, reply.status)
        return answer

    def _failure(self, err: ReadError) -> str:
        if err.kind == "timeout":
            return f"the agent at {self.url} did not answer within {self.timeout:g}s"
        if err.kind == "unreachable":
            return f"cannot reach the agent at {self.url}: {_cause(err.detail)}"
        if err.kind == "too_large":
            return f"{self.url} answered more than {MAX_ANSWER} bytes: is it a gpuwarden agent?"
        return f"request to {self.url} failed: {err.detail}"


def _cause(detail: str) -> str:
    """The reason an engineer acts on ('connection refused', a TLS hint), not the socket's wording."""
    for marker in ("Connection refused", "Name or service not known", "No route to host"):
        if marker in detail:
            return marker.lower()
    if "CERTIFICATE_VERIFY_FAILED" in detail:
        return "TLS certificate not trusted (pass --ca-file)"
    return detail
