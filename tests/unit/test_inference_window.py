"""Sliding-window arithmetic of the inference collector: reset-safe increases and histogram quantiles."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpuwarden.collectors.inference.exposition import LabelKey, Series
from gpuwarden.collectors.inference.window import (
    Observation,
    Window,
    bucket_increase,
    histogram_quantile,
    resets,
    series_increase,
)


@pytest.mark.parametrize(
    ("values", "increase", "reset_count"),
    [
        ([], 0, 0),
        ([5], 0, 0),
        ([10, 15, 30], 20, 0),
        ([10, 10, 10], 0, 0),
        # The server restarted between 30 and 4: the 4 requests after the restart count, nothing is lost.
        ([10, 30, 4, 9], 20 + 4 + 5, 1),
        ([100, 0, 0, 7], 7, 1),
        ([50, 60, 3, 2, 8], 10 + 3 + 2 + 6, 2),
    ],
)
def test_a_counter_increase_treats_every_decrease_as_a_restart(
    values: list[float], increase: float, reset_count: int
) -> None:
    assert series_increase(values) == increase
    assert resets(values) == reset_count


@given(st.lists(st.floats(min_value=0, max_value=1e12, allow_nan=False), max_size=30))
def test_a_counter_increase_is_never_negative(values: list[float]) -> None:
    assert series_increase(values) >= 0


@given(st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=30))
def test_a_counter_without_resets_increases_by_last_minus_first(deltas: list[int]) -> None:
    values = [float(sum(deltas[: i + 1])) for i in range(len(deltas))]
    assert series_increase(values) == values[-1] - values[0]


def _obs(t: float, requests: float, **labels: str) -> Observation:
    return Observation(t, counters={"requests": {tuple(sorted(labels.items())): requests}})


def test_the_window_forgets_scrapes_older_than_its_span() -> None:
    window = Window(span=30)
    for t, value in ((0, 0), (15, 10), (30, 25), (45, 45)):
        window.add(_obs(t, value))
    assert len(window) == 3
    assert window.duration == 30
    assert window.total_increase("requests") == 35


def test_one_scrape_gives_no_rate_and_an_unmapped_signal_gives_none() -> None:
    window = Window(span=60)
    window.add(_obs(0, 10))
    assert window.total_increase("requests") is None
    window.add(_obs(15, 20))
    assert window.total_increase("requests") == 10
    assert window.total_increase("errors") is None


def test_resets_are_judged_per_series_so_one_restarted_model_does_not_inflate_another() -> None:
    window = Window(span=60)
    window.add(Observation(0, counters={"requests": {(("model", "a"),): 1000.0, (("model", "b"),): 10.0}}))
    window.add(Observation(15, counters={"requests": {(("model", "a"),): 1100.0, (("model", "b"),): 2.0}}))
    assert window.increase("requests") == {(("model", "a"),): 100.0, (("model", "b"),): 2.0}
    assert window.last_resets("requests") == 1


INF = math.inf


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        # 100 observations spread evenly over (0, 1]: the quantile is interpolated linearly.
        (0.5, [(0.5, 50), (1.0, 100), (INF, 100)], 0.5),
        (0.9, [(0.5, 50), (1.0, 100), (INF, 100)], 0.9),
        (0.25, [(0.5, 50), (1.0, 100), (INF, 100)], 0.25),
        # A rank inside the +Inf bucket answers the largest finite bound, as Prometheus does.
        (0.99, [(0.1, 10), (0.25, 90), (INF, 100)], 0.25),
        # The first bucket's lower bound is 0.
        (0.5, [(0.2, 10), (INF, 10)], 0.1),
        # Non-monotonic counts (a reset racing a scrape) are made monotonic first.
        (0.5, [(0.1, 60), (0.2, 40), (INF, 100)], 0.1 * 50 / 60),
        (0.0, [(0.1, 0), (0.2, 5), (INF, 5)], 0.0),
    ],
)
def test_histogram_quantile_interpolates_like_prometheus(
    q: float, buckets: list[tuple[float, float]], expected: float
) -> None:
    assert histogram_quantile(q, buckets) == pytest.approx(expected)


@pytest.mark.parametrize(
    "buckets",
    [[], [(INF, 10)], [(0.1, 0), (INF, 0)], [(0.1, 5), (0.2, 10)]],
    ids=["no buckets", "only +Inf", "no observations", "no +Inf bucket"],
)
def test_histogram_quantile_is_nan_where_prometheus_says_nan(buckets: list[tuple[float, float]]) -> None:
    assert math.isnan(histogram_quantile(0.5, buckets))


def test_out_of_range_quantiles_are_infinite_like_prometheus() -> None:
    buckets = [(0.1, 1.0), (INF, 2.0)]
    assert histogram_quantile(-0.1, buckets) == -INF
    assert histogram_quantile(1.5, buckets) == INF


def test_bucket_increases_of_several_series_are_summed_by_le() -> None:
    inc: Series = {
        (("le", "0.1"), ("model", "a")): 3.0,
        (("le", "+Inf"), ("model", "a")): 4.0,
        (("le", "0.1"), ("model", "b")): 1.0,
        (("le", "+Inf"), ("model", "b")): 6.0,
    }
    assert bucket_increase(inc) == [(0.1, 4.0), (INF, 10.0)]


def test_a_series_created_inside_the_window_counts_from_zero_so_the_first_error_is_not_lost() -> None:
    window = Window(span=60)
    ok, failed = (("status", "2xx"),), (("status", "5xx"),)
    window.add(Observation(0, counters={"errors": {}, "requests": {ok: 10.0}}))
    window.add(Observation(15, counters={"errors": {failed: 1.0}, "requests": {ok: 20.0, failed: 1.0}}))
    assert window.total_increase("errors") == 1
    assert window.total_increase("requests") == 11


def test_a_series_that_vanishes_keeps_its_last_value_instead_of_dropping_to_zero() -> None:
    window = Window(span=60)
    key: LabelKey = (("model", "a"),)
    scrapes: list[tuple[float, Series]] = [(0, {key: 5.0}), (15, {}), (30, {key: 8.0})]
    for t, series in scrapes:
        window.add(Observation(t, counters={"requests": series}))
    assert window.total_increase("requests") == 3
