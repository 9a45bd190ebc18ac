"""The http backend: a canary request against the node's serving endpoint.

kserve: the KServe v2 protocol that Triton, KServe and the reference worker implement —
  GET /v2/health/ready (200 when ready), POST /v2/models/<model>/infer with the canary's JSON tensors.
openai: the OpenAI-compatible API of vLLM and SGLang — GET /v1/models (the model must be listed),
  POST /v1/completions with temperature 0; the completion must contain `expect`.
Failures are classified by what the client saw, which is what tells a crash from a hang: connection
refused → unreachable; no answer in time → timeout; 5xx → http_error; an answer of the wrong shape →
bad_response.
"""

from __future__ import annotations

import json
from typing import Any

from gpuwarden.collectors.engine.probe import Outputs, ProbeFailure
from gpuwarden.collectors.engine.settings import HttpProbeSettings
from gpuwarden.httpread import Limits, ReadError, Reply
from gpuwarden.httpread import request as bounded_request
from gpuwarden.modelfiles import Canary

# ReadError kinds → probe failure kinds. A body past the cap or broken HTTP is an answer of the wrong
# shape; a redirect elsewhere means the URL does not point at the engine.
_KINDS = {"timeout": "timeout", "unreachable": "unreachable", "redirect": "bad_response"}


def _excerpt(reply: Reply) -> str:
    try:
        body = reply.json()
        text = str(body.get("error") or body.get("message") or body) if isinstance(body, dict) else str(body)
    except ValueError:
        text = reply.text
    return text.strip().replace("\n", " ")[:160]


def request(
    method: str, url: str, limits: Limits, *, payload: Any = None, headers: dict[str, str] | None = None
) -> Reply:
    """One bounded HTTP call with its failures turned into ProbeFailure reasons."""
    body = None if payload is None else json.dumps(payload).encode()
    sent = dict(headers or {})
    if body is not None:
        sent["Content-Type"] = "application/json"
    try:
        return bounded_request(method, url, limits, headers=sent, body=body)
    except ReadError as err:
        kind = _KINDS.get(err.kind, "bad_response")
        if kind == "unreachable":
            raise ProbeFailure(kind, f"{method} {url}: cannot connect ({err.detail})") from None
        if kind == "timeout":
            raise ProbeFailure(kind, f"{method} {url} gave no answer within {limits.deadline:g} s") from None
        raise ProbeFailure(kind, f"{method} {url}: {err.detail}") from None


def limits(timeout: float, max_body_bytes: int) -> Limits:
    return Limits(timeout, max_body_bytes, deadline_key="probe_timeout", max_body_key="http.max_body_bytes")


def check_ready(url: str, limits: Limits) -> None:
    reply = request("GET", url, limits)
    if reply.status != 200:
        raise ProbeFailure("not_ready", f"GET {url} answered {reply.status}: {_excerpt(reply)}")


class HttpBackend:
    name = "http"

    def __init__(self, settings: HttpProbeSettings, timeout: float) -> None:
        self.settings = settings
        self.timeout = timeout
        self.base = settings.url.rstrip("/")
        self.limits = limits(timeout, settings.max_body_bytes)
        self.uses_canary = settings.protocol == "kserve"
        self.files: list[str] = []
        self._headers: dict[str, str] | None = None

    def reload(self) -> None:
        pass

    def headers(self) -> dict[str, str]:
        if self._headers is None:
            self._headers = {}
            if self.settings.bearer_token_file:
                try:
                    with open(self.settings.bearer_token_file, encoding="utf-8") as f:
                        self._headers["Authorization"] = f"Bearer {f.read().strip()}"
                except OSError as err:
                    self._headers = None
                    raise ProbeFailure(
                        "config_error", f"cannot read bearer_token_file: {err.strerror}"
                    ) from None
        return self._headers

    def run(self, canary: Canary | None) -> Outputs | None:
        if self.settings.protocol == "openai":
            self._openai()
            return None
        assert canary is not None
        return self._kserve(canary)

    def _kserve(self, canary: Canary) -> Outputs:
        if self.settings.check_ready:
            check_ready(f"{self.base}/v2/health/ready", self.limits)
        url = f"{self.base}/v2/models/{self.settings.model}/infer"
        body = {
            "id": "gpuwarden-canary",
            "inputs": [t.to_json() for t in canary.inputs],
            "outputs": [{"name": t.name} for t in canary.outputs],
        }
        response = request("POST", url, self.limits, payload=body, headers=self.headers())
        if response.status != 200:
            raise ProbeFailure("http_error", f"POST {url} answered {response.status}: {_excerpt(response)}")
        try:
            outputs = response.json()["outputs"]
            return {str(o["name"]): [float(v) for v in _flatten(o["data"])] for o in outputs}
        except (ValueError, KeyError, TypeError) as err:
            raise ProbeFailure(
                "bad_response", f"POST {url}: not a KServe v2 infer response ({err!r})"
            ) from None

    def _openai(self) -> None:
        s = self.settings
        if s.check_ready:
            url = f"{self.base}/v1/models"
            response = request("GET", url, self.limits, headers=self.headers())
            if response.status != 200:
                raise ProbeFailure("not_ready", f"GET {url} answered {response.status}: {_excerpt(response)}")
            try:
                served = [str(m["id"]) for m in response.json()["data"]]
            except (ValueError, KeyError, TypeError) as err:
                raise ProbeFailure("bad_response", f"GET {url}: not an OpenAI model list ({err!r})") from None
            if s.model not in served:
                raise ProbeFailure(
                    "not_ready", f"model '{s.model}' is not served (served: {', '.join(served)})"
                )
        url = f"{self.base}/v1/completions"
        body = {"model": s.model, "prompt": s.prompt, "max_tokens": s.max_tokens, "temperature": 0}
        response = request("POST", url, self.limits, payload=body, headers=self.headers())
        if response.status != 200:
            raise ProbeFailure("http_error", f"POST {url} answered {response.status}: {_excerpt(response)}")
        try:
            text = str(response.json()["choices"][0]["text"])
        except (ValueError, KeyError, TypeError, IndexError) as err:
            raise ProbeFailure("bad_response", f"POST {url}: not an OpenAI completion ({err!r})") from None
        if s.expect not in text:
            raise ProbeFailure("wrong_answer", f"completion {text[:80]!r} does not contain {s.expect!r}")

    def runtime_info(self) -> tuple[str, str]:
        return self.settings.protocol, ""

    def close(self) -> None:
        pass  # every call opens and closes its own connection


def _flatten(data: Any) -> list[Any]:
    """KServe v2 allows nested row-major lists as well as flat ones."""
    if isinstance(data, list) and data and isinstance(data[0], list):
        return [v for row in data for v in _flatten(row)]
    if not isinstance(data, list):
        raise TypeError("data is not a list")
    return data
