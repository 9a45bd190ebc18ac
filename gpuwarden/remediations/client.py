"""A client of the agent's remediation API (docs/api.md), for the on-call CLI and scripts.

Every failure is an `ApiError` whose message is one line an engineer can act on (the agent's own JSON
reason when it gave one), with the exit code the CLI returns for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import requests

EX_SOFTWARE = 1
EX_UNAVAILABLE = 69  # sysexits.h: the agent cannot be reached
EX_NOPERM = 77  # sysexits.h: the token was refused


class ApiError(Exception):
    def __init__(self, message: str, code: int = EX_SOFTWARE, status: int | None = None) -> None:
        super().__init__(message)
        self.code, self.status = code, status


class Client:
    def __init__(self, url: str, token: str, timeout: float = 10.0, verify: str | bool = True) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.verify = verify
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

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
        try:
            response = self.session.request(
                method, self.url + path, json=body, params=params, timeout=self.timeout, verify=self.verify
            )
        except requests.ConnectionError as err:
            raise ApiError(f"cannot reach the agent at {self.url}: {_cause(err)}", EX_UNAVAILABLE) from None
        except requests.Timeout:
            late = f"the agent at {self.url} did not answer within {self.timeout:g}s"
            raise ApiError(late, EX_UNAVAILABLE) from None
        except requests.RequestException as err:
            raise ApiError(f"request to {self.url} failed: {_cause(err)}", EX_UNAVAILABLE) from None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise ApiError(
                f"{self.url} answered {response.status_code} without a JSON object: is it a gpuwarden agent?"
            )
        if response.status_code >= 400:
            reason = str(answer.get("error") or f"HTTP {response.status_code}")
            code = EX_NOPERM if response.status_code in (401, 403) else EX_SOFTWARE
            if response.status_code == 404 and reason.startswith("no route"):
                reason = f"the agent at {self.url} serves no remediation API (is api.token_file set?)"
            raise ApiError(f"{reason} (HTTP {response.status_code})", code, response.status_code)
        return answer


def _cause(err: Exception) -> str:
    """The innermost reason ('Connection refused', 'Name or service not known'), not urllib3's chain."""
    text = str(err)
    for marker in ("Connection refused", "Name or service not known", "No route to host", "timed out"):
        if marker in text:
            return marker.lower()
    if "CERTIFICATE_VERIFY_FAILED" in text or "SSLError" in type(err).__name__:
        return "TLS certificate not trusted (pass --ca-file)"
    return type(err).__name__
