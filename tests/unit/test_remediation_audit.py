"""The audit log survives a crash at any byte: torn lines are cut, open runs end `interrupted`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpuwarden.remediations.audit import AuditClosed, AuditCorrupt, AuditLog, read, runs


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_each_record_is_one_json_line_readable_by_run_id(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.write("r1", "trigger", "worker_restart", "worker", source="manual", actor="user:alice", reason="x")
    log.write("r1", "outcome", "worker_restart", "worker", result="succeeded", reason="ready")
    (summary,) = runs(list(read(log.path)))
    assert summary["run"] == "r1" and summary["actor"] == "user:alice" and summary["result"] == "succeeded"


def test_a_torn_last_line_is_cut_and_an_open_run_is_marked_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.write("r1", "trigger", "worker_restart", "worker")
    log.write("r1", "attempt", "worker_restart", "worker")
    log.close()
    with open(path, "ab") as f:
        f.write(b'{"ts": 1, "run": "r1", "step": "act')  # the crash hit mid-write

    records = AuditLog(path).recover()

    on_disk = lines(path)  # every line parses
    assert [r["step"] for r in on_disk] == ["trigger", "attempt", "outcome"]
    assert on_disk[-1]["result"] == "interrupted" and on_disk[-1]["attempted"] is True
    assert records[-1] == on_disk[-1]


def test_a_whole_last_record_without_its_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(
        b'{"ts": 1, "run": "r1", "step": "outcome", "playbook": "p", "target": "t", "result": "failed"}'
    )
    AuditLog(path).recover()
    assert [r["result"] for r in lines(path)] == ["failed"]


def test_a_corrupt_line_in_the_middle_stops_the_engine_instead_of_resetting_its_counters(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text(
        '{"ts": 1, "run": "r1", "step": "attempt", "playbook": "p", "target": "t"}\nGARBAGE\n{}\n'
    )
    with pytest.raises(AuditCorrupt, match="line 2"):
        AuditLog(path).recover()


def test_recovery_twice_marks_a_run_interrupted_once(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    AuditLog(path).write("r1", "plan", "p", "t")
    AuditLog(path).recover()
    AuditLog(path).recover()
    assert [r["step"] for r in lines(path)] == ["plan", "outcome"]


def test_a_record_after_close_is_refused_and_never_lands_in_a_file_that_reused_the_descriptor(
    tmp_path: Path,
) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.write("r1", "trigger", "worker_restart", "worker")
    log.close()
    log.close()  # a second stop is harmless
    other = tmp_path / "other.txt"
    with other.open("w") as f:  # the likely new owner of the closed descriptor's number
        with pytest.raises(AuditClosed, match="closed: the engine stopped"):
            log.write("r1", "outcome", "worker_restart", "worker", result="succeeded")
        f.flush()
    assert other.read_text() == ""
    assert [r["step"] for r in read(log.path)] == ["trigger"]
