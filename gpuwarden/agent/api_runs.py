"""`GET /v1/runs` and `GET /v1/runs/<id>`: the audit log's runs, as (status, JSON body). Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from gpuwarden.remediations.audit import runs

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
RUN_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")


def run_list(
    records: list[dict[str, Any]], query: Mapping[str, str], paused: Mapping[str, str]
) -> tuple[int, dict[str, Any]]:
    """The newest runs first; `?limit=N` (1..1000, default 50) and `?playbook=NAME` narrow them."""
    text = query.get("limit", str(DEFAULT_LIMIT))
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_LIMIT):
        return 400, {"error": f"limit must be a whole number from 1 to {MAX_LIMIT}"}
    playbook = query.get("playbook")
    summaries = [r for r in runs(records) if playbook is None or r["playbook"] == playbook]
    summaries.reverse()
    return 200, {"runs": summaries[: int(text)], "total": len(summaries), "paused": dict(paused)}


def run_detail(records: list[dict[str, Any]], run: str) -> tuple[int, dict[str, Any]]:
    """Every record of one run, its summary, and its plan (the steps it took or, dry, would take)."""
    if not RUN_ID.fullmatch(run):
        return 404, {"error": "no such run (a run id is up to 64 letters, digits, - and _)"}
    own = [r for r in records if r.get("run") == run]
    if not own:
        return 404, {"error": f"no run {run} in the audit log"}
    plan = next((r for r in own if r.get("step") == "plan"), None)
    body = {
        **runs(own)[0],
        "plan": None if plan is None else {"steps": plan.get("steps", []), "refusal": plan.get("refusal")},
        "records": own,
    }
    return 200, body
