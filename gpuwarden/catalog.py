"""Metric catalogs: every series the agent exports is declared once, with its type, labels and help.

A collector declares `CATALOG = (MetricSpec(...), ...)` and fills a `Families` builder per cycle. The
builder refuses names and label sets that are not in the catalog, so a collector cannot emit a series that
the docs, dashboards and alert rules do not know about; tests compare emitted names with the catalog.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.samples import Sample

# "summary" is for quantile series (label `quantile`): promtool rejects a `quantile` label on a gauge, and
# a summary may carry just its quantiles (no _sum/_count) when the window's totals are not counters.
Kind = Literal["gauge", "counter", "histogram", "summary"]


@dataclass(frozen=True)
class MetricSpec:
    name: str  # full name; counters end in _total
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    unit: str = ""  # base unit, for documentation ("seconds", "bytes", "ratio", ...)

    def new_family(self) -> Metric:
        """An empty family: a copy of one built (and validated by prometheus_client) once per spec.

        Building a family validates its name and labels with regular expressions; the GPU collector
        builds ~18 per GPU per cycle, and that was half the cost of its metric building
        (bench/results/gpu-*.txt). A copy shares the name, help and label names and gets its own samples.
        """
        proto = _PROTOTYPES.get(self)
        if proto is None:
            proto = _PROTOTYPES[self] = self._build_family()
        family = object.__new__(type(proto))
        family.__dict__.update(proto.__dict__)
        family.samples = []
        return family

    def _build_family(self) -> Metric:
        labels = list(self.labels)
        if self.kind == "counter":
            return CounterMetricFamily(self.name, self.help, labels=labels)
        if self.kind == "histogram":
            return HistogramMetricFamily(self.name, self.help, labels=labels)
        if self.kind == "summary":
            return Metric(self.name, self.help, "summary")
        return GaugeMetricFamily(self.name, self.help, labels=labels)


_PROTOTYPES: dict[MetricSpec, Metric] = {}


class Families:
    """Collects samples for one cycle against a catalog and yields only the families that got samples."""

    def __init__(self, catalog: Iterable[MetricSpec]) -> None:
        self._specs = {spec.name: spec for spec in catalog}
        self._families: dict[str, Metric] = {}

    def _family(self, name: str, labels: dict[str, str], /) -> tuple[Metric, list[str]]:
        spec = self._specs.get(name)
        if spec is None:
            raise KeyError(f"metric {name} is not in the catalog")
        if set(labels) != set(spec.labels):
            raise ValueError(f"metric {name} takes labels {spec.labels}, got {sorted(labels)}")
        family = self._families.get(name)
        if family is None:
            family = self._families[name] = spec.new_family()
        return family, [str(labels[label]) for label in spec.labels]

    def add(self, name: str, value: float, /, **labels: str) -> None:
        # The hot path of every collector (the GPU collector adds ~30 samples per GPU per cycle): once a
        # family exists and the label names match its spec, the sample is appended as the family's own
        # add_metric would build it (a counter's samples are named `<family>_total`, the catalog name).
        family = self._families.get(name)
        if family is None or tuple(labels) != self._specs[name].labels:
            family, values = self._family(name, labels)  # checks the names; values in the spec's order
            labels = dict(zip(self._specs[name].labels, values, strict=True))
        elif not all(type(v) is str for v in labels.values()):
            labels = {k: str(v) for k, v in labels.items()}
        family.samples.append(Sample(name, labels, float(value), None, None))

    def append(self, name: str, labels: dict[str, str], value: float, /) -> None:
        """A sample whose label dict was checked with `check_labels` (it may be shared between cycles)."""
        family = self._families.get(name)
        if family is None:
            family = self._families[name] = self._specs[name].new_family()
        family.samples.append(Sample(name, labels, value, None, None))

    def check_labels(self, name: str, labels: dict[str, str], /) -> dict[str, str]:
        """`labels` for `name` as `append` takes them: catalog-checked, strings, in the spec's order."""
        _, values = self._family(name, labels)
        return dict(zip(self._specs[name].labels, values, strict=True))

    def add_histogram(
        self, name: str, buckets: Sequence[tuple[str, float]], sum_value: float, /, **labels: str
    ) -> None:
        """`buckets` are cumulative (upper bound, count) pairs ending with ("+Inf", total)."""
        family, values = self._family(name, labels)
        family.add_metric(values, list(buckets), sum_value)  # type: ignore[attr-defined]

    def __iter__(self) -> Iterator[Metric]:
        return iter(self._families.values())


def catalog_names(catalog: Iterable[MetricSpec]) -> set[str]:
    return {spec.name for spec in catalog}
