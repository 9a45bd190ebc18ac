"""gpuwarden.promtext writes exactly the bytes prometheus_client's generate_latest writes."""

from __future__ import annotations

import math
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
    StateSetMetricFamily,
    SummaryMetricFamily,
    UnknownMetricFamily,
)
from prometheus_client.parser import text_string_to_metric_families

from gpuwarden import promtext
from gpuwarden.catalog import Families
from gpuwarden.collectors.gpu.metrics import CATALOG as GPU_CATALOG


class _Registry:
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def both(families: list[Metric]) -> tuple[bytes, bytes]:
    return promtext.render(families), generate_latest(_Registry(families))


names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,20}", fullmatch=True).filter(
    lambda n: not n.endswith(("_total", "_created", "_info", "_sum", "_count", "_bucket"))
)
label_names = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_]{0,10}", fullmatch=True)
label_values = st.text(max_size=12)  # quotes, backslashes, newlines, any Unicode
values = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(2**63), 2**63)
docs = st.text(max_size=30)


@st.composite
def family(draw: st.DrawFn) -> Metric:
    name, doc = draw(names), draw(docs)
    keys = draw(st.lists(label_names, max_size=3, unique=True))
    kind = draw(st.sampled_from(["gauge", "counter", "unknown", "summary", "histogram", "info", "stateset"]))
    rows = draw(
        st.lists(
            st.tuples(st.lists(label_values, min_size=len(keys), max_size=len(keys)), values), max_size=4
        )
    )
    timestamp = draw(st.none() | st.floats(0, 2e9))
    if kind == "gauge":
        fam: Metric = GaugeMetricFamily(name, doc, labels=keys)
        for lv, v in rows:
            fam.add_metric(lv, v, timestamp=timestamp)
    elif kind == "counter":
        fam = CounterMetricFamily(name, doc, labels=keys, created=None)
        for lv, v in rows:
            fam.add_metric(
                lv, abs(v) if not math.isnan(v) else v, created=draw(st.none() | st.floats(0, 2e9))
            )
    elif kind == "unknown":
        fam = UnknownMetricFamily(name, doc, labels=keys)
        for lv, v in rows:
            fam.add_metric(lv, v)
    elif kind == "summary":
        fam = SummaryMetricFamily(name, doc, labels=keys)
        for lv, v in rows:
            fam.add_metric(lv, count_value=3, sum_value=v)
    elif kind == "histogram":
        fam = HistogramMetricFamily(name, doc, labels=keys)
        for lv, v in rows:
            fam.add_metric(lv, buckets=[("0.5", 1), ("+Inf", 3)], sum_value=v)
    elif kind == "info":
        fam = InfoMetricFamily(name, doc, labels=keys)
        for lv, _ in rows:
            fam.add_metric(lv, {"version": draw(label_values)})
    else:
        fam = StateSetMetricFamily(name, doc, labels=keys)
        for lv, _ in rows:
            fam.add_metric(lv, {"a": True, "b": False})
    return fam


@settings(max_examples=400, deadline=None)
@given(st.lists(family(), max_size=4))
def test_any_families_render_as_generate_latest_renders_them(families: list[Metric]) -> None:
    ours, theirs = both(families)
    assert ours == theirs


def test_openmetrics_only_samples_go_to_gauge_families_of_their_own() -> None:
    gauge_histogram = GaugeHistogramMetricFamily(
        "queue", "depth", buckets=[("1", 2), ("+Inf", 4)], gsum_value=7
    )
    counter = CounterMetricFamily("requests", "served", labels=["code"])
    counter.add_metric(["200"], 5, created=1700000000.5)
    ours, theirs = both([gauge_histogram, counter])
    assert ours == theirs
    assert b"# TYPE queue_gsum gauge\n" in ours and b"# TYPE requests_created gauge\n" in ours


def test_the_gpu_families_of_a_cycle_render_as_generate_latest_renders_them() -> None:
    fams = Families(GPU_CATALOG)
    for spec in GPU_CATALOG:
        labels = {name: f'v"{i}\\\n' for i, name in enumerate(spec.labels)}
        if spec.kind == "histogram":
            continue
        fams.add(spec.name, 1.5e-7, **labels)
    families = list(fams)
    ours, theirs = both(families)
    assert ours == theirs and ours.count(b"# TYPE") == len(families)
    # And the text parses back to the same series.
    parsed = {
        (s.name, tuple(sorted(s.labels.items())))
        for f in text_string_to_metric_families(ours.decode())
        for s in f.samples
    }
    assert len(parsed) == sum(len(f.samples) for f in families)


def test_the_agent_never_loads_prometheus_client_exposition_nor_ssl() -> None:
    """What deferred.py and promtext are for (bench/footprint.py): the agent's start leaves them out."""
    code = (
        "import sys\n"
        "from gpuwarden import cli, config\n"
        "from gpuwarden.agent import daemon, runner\n"
        "r = runner.Runner(daemon.HealthStore(), __import__('logging').getLogger())\n"
        "r.render()\n"
        "assert r.exposition.plain.startswith(b'# HELP'), r.exposition.plain[:60]\n"
        "heavy = ('ssl', 'prometheus_client.exposition', 'http.server', 'urllib.request')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "import prometheus_client\n"
        "print(prometheus_client.generate_latest.__name__, prometheus_client.REGISTRY is not None)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["[]", "generate_latest True"]
