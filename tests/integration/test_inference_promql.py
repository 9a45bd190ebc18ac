"""The inference collector's arithmetic against Prometheus itself, through `promtool test rules`.

Hypothesis draws histograms and counters whose series restart mid-window; our window computes the
increases (resets included) and the quantiles, and Prometheus' PromQL engine must agree within 1e-9.
Every series starts at 0 at the start of the range, which makes Prometheus' extrapolation factor
exactly 1 (its zero-point clamp), so `increase()` there and here are the same quantity.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpuwarden.collectors.inference.exposition import Series
from gpuwarden.collectors.inference.window import (
    Observation,
    Window,
    bucket_increase,
    histogram_quantile,
    resets,
)

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _needs_promtool() -> None:
    # `make test` installs Debian's prometheus package: a missing promtool is a broken setup, not a skip.
    assert shutil.which("promtool"), "promtool is missing: `make test` installs Debian's prometheus package"


STEP_S = 15
QUANTILES = (0.5, 0.9, 0.99)


@dataclass
class Case:
    bounds: list[float]  # finite upper bounds; +Inf is implied
    values: list[list[float]]  # per bucket (bounds + [+Inf]), cumulative value at each of the 5 samples


@st.composite
def histograms(draw: st.DrawFn) -> Case:
    bounds = sorted(draw(st.sets(st.integers(1, 5000), min_size=1, max_size=8)))
    restart = draw(st.sampled_from([None, 2, 3, 4]))  # sample index at which the server restarted
    values = [[0.0] * 5 for _ in range(len(bounds) + 1)]
    for step in range(1, 5):
        # New observations per bucket (non-cumulative), at least one per step.
        new = draw(st.lists(st.integers(0, 50), min_size=len(bounds) + 1, max_size=len(bounds) + 1))
        new[-1] += 1
        running = 0.0
        for i, n in enumerate(new):
            running += n
            base = 0.0 if step == restart else values[i][step - 1]
            values[i][step] = base + running
    return Case([b / 1000 for b in bounds], values)


def close_to(expr: str, value: float) -> str:
    """A PromQL expression that is 1 when `expr` equals `value` within 1e-9, else 0."""
    return f"abs(({expr}) - {value!r}) < bool 1e-9"


def _ours(case: Case) -> tuple[dict[float, float], float, int]:
    window = Window(span=60)
    les = [repr(b) for b in case.bounds] + ["+Inf"]
    for step in range(5):
        series: Series = {(("le", le),): case.values[i][step] for i, le in enumerate(les)}
        window.add(Observation(step * STEP_S, counters={"latency_bucket": series}))
    inc = window.increase("latency_bucket")
    assert inc is not None
    buckets = bucket_increase(inc)
    quantiles = {q: histogram_quantile(q, buckets) for q in QUANTILES}
    return quantiles, buckets[-1][1], resets(case.values[-1])


def _check_with_promtool(cases: list[Case], tmp: Path) -> None:
    series, tests = [], []
    for k, case in enumerate(cases):
        les = [repr(b) for b in case.bounds] + ["+Inf"]
        for i, le in enumerate(les):
            series.append(
                {"series": f'h{k}_bucket{{le="{le}"}}', "values": " ".join(f"{v:g}" for v in case.values[i])}
            )
        quantiles, total, restarts = _ours(case)
        rng = "[1m15s]"  # reaches back past the first sample in Prometheus 2.x and 3.x alike
        for q, value in quantiles.items():
            expr = close_to(f"histogram_quantile({q}, sum by (le) (increase(h{k}_bucket{rng})))", value)
            tests.append({"expr": expr, "eval_time": "1m", "exp_samples": [{"labels": "{}", "value": 1}]})
        expr = close_to(f'increase(h{k}_bucket{{le="+Inf"}}{rng})', total)
        tests.append(
            {"expr": expr, "eval_time": "1m", "exp_samples": [{"labels": '{le="+Inf"}', "value": 1}]}
        )
        expr = f'resets(h{k}_bucket{{le="+Inf"}}{rng})'
        tests.append(
            {"expr": expr, "eval_time": "1m", "exp_samples": [{"labels": '{le="+Inf"}', "value": restarts}]}
        )
    doc = {
        "evaluation_interval": f"{STEP_S}s",
        "tests": [{"interval": f"{STEP_S}s", "input_series": series, "promql_expr_test": tests}],
    }
    path = tmp / "oracle.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = subprocess.run(["promtool", "test", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(histograms(), min_size=25, max_size=25))
def test_quantiles_increases_and_resets_agree_with_prometheus(tmp_path: Path, cases: list[Case]) -> None:
    _check_with_promtool(cases, tmp_path)


def test_a_disagreement_would_be_caught(tmp_path: Path) -> None:
    # The oracle itself must be able to fail: a wrong expected quantile is reported by promtool.
    case = Case([0.1, 0.25], [[0, 1, 2, 3, 4], [0, 3, 6, 2, 5], [0, 4, 8, 4, 8]])
    quantiles, _, _ = _ours(case)
    assert quantiles[0.99] == 0.25  # rank in +Inf: the largest finite bound
    wrong = Case(case.bounds, case.values)
    with pytest.raises(AssertionError, match="FAILED"):
        _check_with_promtool_expecting(wrong, tmp_path, 0.99, 0.2463)


def _check_with_promtool_expecting(case: Case, tmp: Path, q: float, value: float) -> None:
    les = [repr(b) for b in case.bounds] + ["+Inf"]
    series = [
        {"series": f'h_bucket{{le="{le}"}}', "values": " ".join(f"{v:g}" for v in case.values[i])}
        for i, le in enumerate(les)
    ]
    expr = close_to(f"histogram_quantile({q}, sum by (le) (increase(h_bucket[1m15s])))", value)
    doc = {
        "evaluation_interval": f"{STEP_S}s",
        "tests": [
            {
                "interval": f"{STEP_S}s",
                "input_series": series,
                "promql_expr_test": [
                    {"expr": expr, "eval_time": "1m", "exp_samples": [{"labels": "{}", "value": 1}]}
                ],
            }
        ],
    }
    path = tmp / "wrong.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = subprocess.run(["promtool", "test", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
