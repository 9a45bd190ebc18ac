"""The audit log: append-only JSON lines, one record per step, fsynced before the action it announces.

Every record has `ts`, `run`, `step`, `playbook`, `target` and step fields. Steps of a run, in order:
`trigger`, `decision` (a rail said no, with its name), `plan`, `evidence`, `lease`, `attempt` (the
attempt is reserved here, before anything is touched), `action` (one per plan step, started/done/
failed), `verify`, and always last `outcome` with `result` in RESULTS. Engine-wide records: `pause`,
`resume`, `reset`, `exhausted`, `storm` (the engine stopped acting: too many disruptive runs). A run
skipped for a held bad state may be followed by `repeats` records: how many later requests of the same
state the same rail refused (remediations/held.py), instead of a whole skipped run for each.

Crash safety: one `os.write` per record on an O_APPEND descriptor, then `fsync`. A crash can leave at
most one torn last line; `recover()` cuts it off and closes every run that has no `outcome` with
`interrupted`. Interrupted runs count as attempts and are never retried by themselves (NVSentinel
ADR-056: an ambiguous outcome is not retried automatically). The engine rebuilds its rails' state from
this file, so a restart does not reset the attempt budget.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RESULTS = ("succeeded", "failed", "skipped", "denied", "dry_run", "refused", "interrupted")


class AuditClosed(Exception):
    """A record after `close()`: the engine stopped; the run it belonged to reads `interrupted` at start."""


class AuditCorrupt(Exception):
    """A line other than the last does not parse: the engine refuses to start on state it cannot trust."""


class AuditLog:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.evidence_dir = self.path.parent / "evidence"
        self._lock = threading.Lock()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)

    def write(self, run: str, step: str, playbook: str, target: str, **fields: Any) -> dict[str, Any]:
        record = {
            "ts": round(time.time(), 6),
            "run": run,
            "step": step,
            "playbook": playbook,
            "target": target,
        }
        record.update(fields)
        line = (json.dumps(record, sort_keys=True, default=str) + "\n").encode()
        with self._lock:
            if self._fd < 0:  # never write to a closed descriptor: its number may be another file's now
                raise AuditClosed(f"{self.path} is closed: the engine stopped")
            os.write(self._fd, line)  # O_APPEND: one write, one position, never interleaved
            os.fsync(self._fd)
        return record

    def write_evidence(self, run: str, evidence: dict[str, Any]) -> str:
        """The evidence of a run in its own file (atomically), referenced from the `evidence` record."""
        self.evidence_dir.mkdir(parents=True, exist_ok=True)
        final = self.evidence_dir / f"{run}.json"
        tmp = final.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(evidence, f, sort_keys=True, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        return str(final)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def recover(self) -> list[dict[str, Any]]:
        """Cut a torn last line, mark runs without an outcome `interrupted`; returns all records."""
        records, good_bytes, tail = _parse(self.path.read_bytes())
        if tail == "torn":
            os.truncate(self.path, good_bytes)
        elif tail == "unterminated":
            os.write(self._fd, b"\n")
        open_runs: dict[str, dict[str, Any]] = {}
        for r in records:
            if r["step"] == "outcome":
                open_runs.pop(r["run"], None)
            elif r["step"] in (
                "trigger",
                "decision",
                "plan",
                "evidence",
                "lease",
                "attempt",
                "action",
                "verify",
            ):
                open_runs.setdefault(r["run"], r)
        for run, first in open_runs.items():
            attempted = any(r["run"] == run and r["step"] == "attempt" for r in records)
            records.append(
                self.write(
                    run, "outcome", first["playbook"], first["target"], result="interrupted",
                    attempted=attempted, reason="the agent stopped during this run; not retried",
                )
            )  # fmt: skip
        return records


def _parse(data: bytes) -> tuple[list[dict[str, Any]], int, str]:
    """(records, bytes of complete lines, tail) with tail `ok`, `torn` (cut it) or `unterminated`
    (a whole record whose newline did not make it: keep it, add the newline)."""
    records: list[dict[str, Any]] = []
    offset = 0
    lines = data.split(b"\n")
    for i, raw in enumerate(lines):
        last = i == len(lines) - 1
        if last and raw == b"":
            break
        try:
            record = json.loads(raw)
            if not isinstance(record, dict) or "run" not in record or "step" not in record:
                raise ValueError("not an audit record")
        except ValueError as err:
            if last:  # no newline after it: the write was torn by a crash
                return records, offset, "torn"
            raise AuditCorrupt(f"audit log line {i + 1}: {err}") from None
        records.append(record)
        if last:
            return records, offset, "unterminated"
        offset += len(raw) + 1
    return records, offset, "ok"


def read(path: str | Path, since: float | None = None) -> Iterator[dict[str, Any]]:
    """Records of the log (a torn last line is skipped), optionally only those at or after `since`."""
    records, _, _ = _parse(Path(path).read_bytes())
    for r in records:
        if since is None or r.get("ts", 0) >= since:
            yield r


def runs(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One summary per run id, in order of first appearance: what `gpuwarden runs` prints."""
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        if r["step"] in ("pause", "resume", "reset", "exhausted", "storm"):
            continue
        run = out.setdefault(
            r["run"], {"run": r["run"], "playbook": r["playbook"], "target": r["target"], "started": r["ts"]}
        )
        if r["step"] == "trigger":
            run.update(source=r.get("source"), actor=r.get("actor"), reason=r.get("reason"))
        if r["step"] == "outcome":
            run.update(result=r.get("result"), ended=r["ts"], detail=r.get("reason"))
        if r["step"] == "repeats":  # later requests of the same held state, refused the same way
            repeats = run.get("repeats", 0) + int(r.get("count", 0))
            run.update(repeats=repeats, repeated_until=r.get("last_ts"))
    return list(out.values())


def result_text(run: dict[str, Any]) -> str:
    """A run's result for a table: `skipped +2879` when a held state was refused 2879 more times."""
    result = str(run.get("result") or "running")
    return f"{result} +{run['repeats']}" if run.get("repeats") else result
