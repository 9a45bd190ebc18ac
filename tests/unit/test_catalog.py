"""The catalog builder: what it refuses, and that its fast path builds the samples prometheus_client would."""

from __future__ import annotations

import pytest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from gpuwarden.catalog import Families, MetricSpec, checked_labels

CATALOG = (
    MetricSpec("gpuwarden_test_temperature_celsius", "gauge", "A gauge.", ("gpu", "uuid")),
    MetricSpec("gpuwarden_test_errors_total", "counter", "A counter.", ("gpu", "uuid", "type")),
)
GAUGE, COUNTER = CATALOG


def test_labels_are_refused_unless_exactly_the_specs_in_its_order_and_strings() -> None:
    assert checked_labels(GAUGE, {"gpu": "0", "uuid": "GPU-a"}) == {"gpu": "0", "uuid": "GPU-a"}
    for wrong in ({"gpu": "0"}, {"uuid": "GPU-a", "gpu": "0"}, {"gpu": 0, "uuid": "GPU-a"}):
        with pytest.raises(ValueError, match="gpuwarden_test_temperature_celsius takes labels"):
            checked_labels(GAUGE, wrong)  # type: ignore[arg-type]


def test_extended_samples_equal_what_the_families_own_add_metric_builds() -> None:
    fams = Families(CATALOG)
    gpu0, gpu1 = {"gpu": "0", "uuid": "GPU-a"}, {"gpu": "1", "uuid": "GPU-b"}
    fams.extend(
        [
            (GAUGE.name, gpu0, 52),
            (COUNTER.name, {**gpu0, "type": "xid"}, True),
            (GAUGE.name, gpu1, None),  # no answer: no sample
            (GAUGE.name, gpu1, 48.5),
        ]
    )
    gauge = GaugeMetricFamily(GAUGE.name, GAUGE.help, labels=["gpu", "uuid"])
    gauge.add_metric(["0", "GPU-a"], 52)
    gauge.add_metric(["1", "GPU-b"], 48.5)
    counter = CounterMetricFamily(COUNTER.name, COUNTER.help, labels=["gpu", "uuid", "type"])
    counter.add_metric(["0", "GPU-a", "xid"], 1)
    assert list(fams) == [gauge, counter]
    assert [type(s.value) for f in fams for s in f.samples] == [float, float, float]


def test_a_name_outside_the_catalog_is_refused() -> None:
    with pytest.raises(KeyError):
        Families(CATALOG).extend([("gpuwarden_test_unknown", {}, 1)])
