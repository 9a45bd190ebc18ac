"""Parsing and selecting series of a scraped exposition, as a PromQL selector would."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gpuwarden.collectors.inference.exposition import Exposition, ScrapeError, sample_lines, wanted_names
from gpuwarden.collectors.inference.profiles import INFERENCE_HANDLERS, PROFILES
from gpuwarden.collectors.inference.settings import Mapping, ProfileName, Selector

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "inference"


def selectors(mapping: Mapping) -> list[Selector]:
    return [s for name in Mapping.model_fields if isinstance(s := getattr(mapping, name), Selector)]


@pytest.mark.parametrize(
    ("profile", "capture"), [("vllm", "vllm-1"), ("triton", "triton-1"), ("sglang", "sglang-1")]
)
def test_dropping_unused_lines_before_parsing_changes_no_selected_series(
    profile: ProfileName, capture: str
) -> None:
    text = (FIXTURES / f"{capture}.prom").read_text()
    sels = selectors(PROFILES[profile])
    full, filtered = Exposition.parse(text), Exposition.parse(text, wanted_names(sels))
    for sel in sels:
        for suffix in ("", "_bucket", "_sum", "_count"):
            assert filtered.select(sel, suffix) == full.select(sel, suffix), (sel.metric, suffix)
    assert len(sample_lines(text, wanted_names(sels))[0]) < text.count("\n")


def test_a_triton_counter_is_found_by_its_bare_name() -> None:
    exp = Exposition.parse((FIXTURES / "triton-1.prom").read_text())
    assert sum(exp.select(Selector(metric="nv_inference_request_success")).values()) == 7600
    # nv_inference_count is a counter whose name happens to end in _count.
    assert sum(exp.select(Selector(metric="nv_inference_count")).values()) == 23950


def test_label_regexes_match_the_whole_value_like_promql() -> None:
    exp = Exposition.parse((FIXTURES / "vllm-1.prom").read_text())
    inference = exp.select(Selector(metric="http_requests_total", match={"handler": INFERENCE_HANDLERS}))
    assert sorted(dict(k)["handler"] for k in inference) == ["/v1/chat/completions"] * 3
    assert exp.select(Selector(metric="http_requests_total", match={"handler": "/v1"})) == {}


def test_a_missing_label_matches_an_empty_regex_like_promql() -> None:
    exp = Exposition.parse('up{job="a"} 1\nup{job="b",env="prod"} 1\n')
    assert list(exp.select(Selector(metric="up", match={"env": ""}))) == [(("job", "a"),)]


@pytest.mark.parametrize(("aggregate", "expected"), [("sum", 5.0), ("max", 4.0)], ids=["sum", "max"])
def test_several_gauge_series_combine_as_configured(aggregate: str, expected: float) -> None:
    exp = Exposition.parse((FIXTURES / "triton-1.prom").read_text())
    sel = Selector.model_validate({"metric": "nv_inference_pending_request_count", "aggregate": aggregate})
    assert exp.gauge(sel) == expected


def test_an_absent_gauge_is_none_not_zero() -> None:
    assert Exposition.parse("").gauge(Selector(metric="vllm:num_requests_waiting")) is None


def test_garbage_is_a_scrape_error_naming_the_format() -> None:
    with pytest.raises(ScrapeError, match="invalid Prometheus exposition"):
        Exposition.parse('vllm:num_requests_running{model_name="x" 3\n')


def test_nan_samples_are_no_value_not_a_poisoned_sum() -> None:
    text = 'q{quantile="0.99",model="a"} NaN\nq{quantile="0.99",model="b"} 7\ng{model="a"} NaN\n'
    exp = Exposition.parse(text)
    assert list(exp.select(Selector(metric="q")).values()) == [7.0]
    assert exp.gauge(Selector(metric="g")) is None


BASES = ("nv_inference_count", "vllm:e2e", "http_requests", "app_queue")
SUFFIXES = ("", "_total", "_bucket", "_count", "_sum", "_created", "_total_bucket")


@settings(max_examples=300)
@example(lines=[("nv_inference_count", "_total_bucket", 0, 0)], base="nv_inference_count", suffix="")
@given(
    st.lists(
        st.tuples(st.sampled_from(BASES), st.sampled_from(SUFFIXES), st.integers(0, 3), st.integers(0, 99)),
        max_size=40,
    ),
    st.sampled_from(BASES),
    st.sampled_from(SUFFIXES),
)
def test_the_line_filter_never_drops_a_line_a_selector_reads(
    lines: list[tuple[str, str, int, int]], base: str, suffix: str
) -> None:
    text = "".join(f'{b}{s}{{le="{le}",k="{v % 3}"}} {v}\n' for b, s, le, v in lines)
    sel = Selector(metric=base + suffix)
    full, filtered = Exposition.parse(text), Exposition.parse(text, wanted_names([sel]))
    for read in ("", "_bucket", "_sum", "_count"):
        assert filtered.select(sel, read) == full.select(sel, read)


def test_the_profile_parse_reads_escapes_braces_spaces_and_timestamps_as_the_full_parse_does() -> None:
    text = (
        "# HELP req Requests.\n# TYPE req counter\n"
        'req_total{path="/a b}",q="say \\"hi\\"",nl="x\\\\ny"} 3 1700000000000\n'
        'req_total{path="/c"} +Inf\n'
        "req_total 7\n"
    )
    sel = Selector(metric="req_total")
    full, parsed = Exposition.parse(text), Exposition.parse(text, wanted_names([sel]))
    assert parsed.select(sel) == full.select(sel)
    assert len(parsed.select(sel)) == 3
    again = Exposition.parse(text.replace(" 3 ", " 4 "), wanted_names([sel]))  # series known: values only
    assert sorted(again.select(sel).values()) == [4.0, 7.0, float("inf")]


@pytest.mark.parametrize(
    "line",
    [
        'vllm:num_requests_running{model_name="x" 3',
        "vllm:num_requests_running",
        "vllm:num_requests_running 1 2 3",
    ],
)
def test_a_garbled_line_the_profile_reads_is_a_scrape_error(line: str) -> None:
    with pytest.raises(ScrapeError, match="invalid Prometheus exposition"):
        Exposition.parse(line + "\n", {"vllm:num_requests_running"})
