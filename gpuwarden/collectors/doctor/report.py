"""Render findings as a table for people or JSON for machines."""

from __future__ import annotations

import json
import shutil
import textwrap

from gpuwarden.collectors.doctor.findings import Finding, Status, exit_code

MARK = {Status.PASS: "ok", Status.FAIL: "FAIL", Status.SKIP: "skip", Status.ERROR: "ERROR"}


def table(findings: list[Finding], width: int | None = None) -> str:
    width = width or shutil.get_terminal_size((120, 24)).columns
    name_w = max(len("CHECK"), *(len(f.check) for f in findings))
    status_w = 6
    detail_w = max(30, width - name_w - status_w - 4)
    lines = [f"{'CHECK':<{name_w}}  {'STATUS':<{status_w}}  DETAIL"]
    for f in findings:
        wrapped = textwrap.wrap(f.detail, detail_w) or [""]
        lines.append(f"{f.check:<{name_w}}  {MARK[f.status]:<{status_w}}  {wrapped[0]}")
        pad = " " * (name_w + status_w + 4)
        lines += [pad + more for more in wrapped[1:]]
        if f.status == Status.FAIL and f.fix:
            lines += [
                pad + ("fix: " if i == 0 else "     ") + part
                for i, part in enumerate(textwrap.wrap(f.fix, detail_w - 5))
            ]
    counts = {s: sum(1 for f in findings if f.status == s) for s in Status}
    lines.append("")
    lines.append(
        f"{counts[Status.PASS]} passed, {counts[Status.FAIL]} failed, {counts[Status.SKIP]} skipped, "
        f"{counts[Status.ERROR]} could not run; exit {exit_code(findings)}"
    )
    return "\n".join(lines)


def as_json(findings: list[Finding]) -> str:
    return json.dumps(
        {"exit_code": exit_code(findings), "findings": [f.to_json() for f in findings]},
        indent=2,
        sort_keys=True,
    )
