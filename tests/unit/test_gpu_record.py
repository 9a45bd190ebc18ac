"""`gpuwarden gpu record` ↔ replay: a recording replayed and recorded again is the same recording."""

from __future__ import annotations

from pathlib import Path

from gpuwarden.collectors.gpu.queries import QUERIES
from gpuwarden.collectors.gpu.record import FORMAT, record, write
from gpuwarden.collectors.gpu.replay import ReplayBackend
from tests.fixtures.nvml.support import recording


def test_recording_a_replay_of_the_h200_gives_back_every_answer(tmp_path: Path) -> None:
    original = recording("h200-busy")
    again = record(ReplayBackend(original), event_wait_ms=10)
    assert again["format"] == FORMAT
    assert again["devices"] == original["devices"]
    assert again["system"] == original["system"]
    assert again["xid_events"]["registered_gpus"] == [0] and again["xid_events"]["result"] == "timeout"
    write(again, str(tmp_path / "again.json"))
    assert ReplayBackend.from_file(str(tmp_path / "again.json")).device_count() == 1


def test_the_h200_recording_answers_every_question_of_the_query_plan() -> None:
    dev = recording("h200-idle")["devices"][0]
    assert set(dev) == {q.key for q in QUERIES}
    assert all(("value" in answer) != ("error" in answer) for answer in dev.values())


def test_a_file_that_is_not_a_recording_is_refused_with_its_format() -> None:
    try:
        ReplayBackend({"format": "something-else"})
        raise AssertionError("expected ValueError")
    except ValueError as err:
        assert "something-else" in str(err)
