"""Textfile collector: good files are re-exported, a bad file is skipped whole and reported."""

from __future__ import annotations

import logging
import os
import resource
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from gpuwarden.agent.context import build_collector
from gpuwarden.config import AgentConfig
from gpuwarden.health import HealthResult, State
from tests.golden import exposition, split

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "textfile"


def collect(directory: Path) -> tuple[str, list[HealthResult]]:
    config = AgentConfig.model_validate(
        {"collectors": {"textfile": {"enabled": True, "directory": str(directory)}}}
    )
    metrics, health = split(build_collector("textfile", config, logging.getLogger("t")).collect())
    return exposition(metrics), health


def test_good_files_are_served_with_their_mtime(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "good" / "model.prom", tmp_path)
    os.utime(tmp_path / "model.prom", (1_700_000_000, 1_700_000_000))
    text, health = collect(tmp_path)
    assert 'inference_model_info{model="deepseek-v3",revision="a1b2c3"} 1.0' in text
    assert 'gpuwarden_textfile_mtime_seconds{file="model.prom"} 1.7e+09' in text
    assert "gpuwarden_textfile_scrape_error 0.0" in text
    assert [h.state for h in health] == [State.HEALTHY]


def test_a_file_that_does_not_parse_is_skipped_whole_and_reported(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "good" / "model.prom", tmp_path)
    (tmp_path / "broken.prom").write_text('half_written_metric{a="1" 3\n')
    text, health = collect(tmp_path)
    assert "inference_model_info" in text and "half_written_metric" not in text
    assert "gpuwarden_textfile_scrape_error 1.0" in text
    (result,) = health
    assert result.state == State.DEGRADED and "broken.prom" in result.reason


def test_a_file_may_not_impersonate_the_agents_own_series(tmp_path: Path) -> None:
    (tmp_path / "evil.prom").write_text("gpuwarden_gpu_xid_errors_total 0\n")
    text, health = collect(tmp_path)
    assert "gpuwarden_gpu_xid_errors_total" not in text
    assert "reserved" in health[0].reason


def test_a_missing_directory_is_simply_empty(tmp_path: Path) -> None:
    text, health = collect(tmp_path / "nope")
    assert "gpuwarden_textfile_scrape_error 0.0" in text
    assert [h.state for h in health] == [State.HEALTHY]


# -- files that must never spoil the page -------------------------------------------------------------

NODE_EXPORTER = FIXTURES / "node_exporter"


def promtool_parse_errors(text: str) -> str:
    """promtool's parse errors for `text` (its lint remarks, rc 3, are about the writers' names)."""
    done = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True)
    assert done.returncode in (0, 3), done.stdout + done.stderr
    return "" if done.returncode == 0 else (done.stdout + done.stderr).decode()


@pytest.mark.parametrize(
    ("case", "kept"),
    [
        ("different_metric_types", ['events_total{foo="bar"} 10.0', "event_duration_seconds_total_count"]),
        ("inconsistent_metrics", ['http_requests_total{code="200",method="get"} 11.0', "go_goroutines 20.0"]),
        ("two_metric_files", ['testmetric_samename{foo="1"} 100.0', 'testmetric_samename{foo="2"} 200.0']),
        ("metrics_merge_different_help", ['events_total{file="b",foo="baz"} 40.0']),
        (
            "metrics_merge_no_help",
            ['events_total{file="a",foo="bar"} 10.0', 'events_total{file="b",foo="baz"} 40.0'],
        ),
    ],
)
def test_node_exporters_textfile_fixtures_are_served_whole(
    tmp_path: Path, case: str, kept: list[str]
) -> None:
    for path in (NODE_EXPORTER / case).iterdir():
        shutil.copy(path, tmp_path)
    text, health = collect(tmp_path)
    assert [h.state for h in health] == [State.HEALTHY], health
    for series in kept:
        assert series in text
    assert text.count("# TYPE events_total counter") <= 1  # a metric split over files is one family
    assert "parsing error" not in promtool_parse_errors(text)


def test_a_client_side_timestamp_fails_its_file_as_in_node_exporter(tmp_path: Path) -> None:
    shutil.copy(NODE_EXPORTER / "client_side_timestamp" / "metrics.prom", tmp_path)
    text, health = collect(tmp_path)
    assert "normal_metric" not in text
    assert 'gpuwarden_textfile_file_error{file="metrics.prom",reason="timestamp"} 1.0' in text


BAD_FILES = {
    "duplicate_type": "# TYPE a gauge\na 1\n# TYPE a gauge\n",
    "unsupported_type": '# TYPE a info\na_info{version="1"} 1\n',
    "invalid_label": '# TYPE a summary\na{quantile="abc"} 1\n',
    "reserved_name": "process_cpu_seconds_total 3\n",
    "duplicate_series": 'a{x="1"} 1\na{x="1"} 2\n',
    "duplicate_help": "# HELP a one\n# HELP a two\na 1\n",
    "parse_error": 'a{x="1" 3\n',
    "not_utf8": "a 1\n# caf\xe9\n",
    "invalid_name": '{"my.metric"} 1\n',
}


@pytest.mark.parametrize("reason", sorted(BAD_FILES))
def test_a_bad_file_is_skipped_with_its_reason_and_the_others_are_kept(tmp_path: Path, reason: str) -> None:
    shutil.copy(FIXTURES / "good" / "model.prom", tmp_path)
    (tmp_path / "bad.prom").write_bytes(BAD_FILES[reason].encode("latin-1"))
    text, health = collect(tmp_path)
    assert f'gpuwarden_textfile_file_error{{file="bad.prom",reason="{reason}"}} 1.0' in text
    assert 'inference_model_info{model="deepseek-v3",revision="a1b2c3"} 1.0' in text
    assert health[0].state == State.DEGRADED and "bad.prom" in health[0].reason
    assert promtool_parse_errors(text) == ""


@pytest.mark.parametrize("bound", [" 1", "1_0", "0x1p3", "nan"])
def test_a_bucket_bound_python_reads_but_prometheus_does_not_fails_its_file(
    tmp_path: Path, bound: str
) -> None:
    # Found by the fuzz test: float(" 1") is 1.0 in Python, while promtool rejects le=" 1" and the whole page.
    text_in = f'# TYPE d histogram\nd_bucket{{le="{bound}"}} 1\nd_bucket{{le="+Inf"}} 1\nd_sum 1\nd_count 1\n'
    (tmp_path / "bad.prom").write_text(text_in)
    text, _ = collect(tmp_path)
    assert 'gpuwarden_textfile_file_error{file="bad.prom",reason="invalid_label"} 1.0' in text
    assert promtool_parse_errors(text) == ""


def test_a_name_clash_between_files_skips_the_later_file(tmp_path: Path) -> None:
    (tmp_path / "a.prom").write_text("# TYPE jobs_done counter\njobs_done 1\n")
    (tmp_path / "b.prom").write_text("# TYPE jobs_done_total gauge\njobs_done_total 2\n")
    text, health = collect(tmp_path)
    assert "jobs_done_total 1.0" in text and "jobs_done_total 2.0" not in text
    assert 'file="b.prom",reason="name_conflict"' in text
    assert "jobs_done_total is a gauge here but a counter in a.prom" in health[0].reason


def test_a_fifo_dev_zero_dev_urandom_a_directory_and_a_huge_file_are_skipped_unread(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.prom")  # opening it for reading would block until a writer comes
    (tmp_path / "zero.prom").symlink_to("/dev/zero")
    (tmp_path / "random.prom").symlink_to("/dev/urandom")
    (tmp_path / "dir.prom").mkdir()
    with open(tmp_path / "huge.prom", "wb") as f:
        f.truncate(100 << 20)  # sparse: 100 MB that costs no disk
    shutil.copy(FIXTURES / "good" / "model.prom", tmp_path)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    text, _ = collect(tmp_path)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    for name in ("fifo", "zero", "random", "dir"):
        assert f'file="{name}.prom",reason="not_regular"' in text
    assert 'file="huge.prom",reason="too_large"' in text
    assert "inference_model_info" in text
    assert grown_mb < 10, f"peak RSS +{grown_mb:.0f} MB"


def test_a_file_rewritten_in_place_is_never_served_torn(tmp_path: Path) -> None:
    # Two versions of the same length: a read that spans a rewrite would mix their values.
    versions = [
        "".join(f'rewritten_series{{n="{i:04}"}} {v}\n' for i in range(2000)).encode() for v in (1, 2)
    ]
    path = tmp_path / "busy.prom"
    path.write_bytes(versions[0])
    stop = threading.Event()

    def writer() -> None:  # the non-atomic writer: truncate and write in place, over and over
        n = 0
        while not stop.is_set():
            with open(path, "wb") as f:
                f.write(versions[n % 2])
            n += 1

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        for _ in range(50):
            text, _ = collect(tmp_path)
            values = {
                line.rsplit(" ", 1)[1] for line in text.splitlines() if line.startswith("rewritten_series{")
            }
            served = text.count("rewritten_series{")
            # Whole (one version), or nothing: the file was empty at that instant or changed while read.
            assert served in (0, 2000) and len(values) <= 1, f"{served} series, values {values}"
    finally:
        stop.set()
        thread.join()
