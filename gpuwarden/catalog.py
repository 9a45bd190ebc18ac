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
_Template = tuple[type[Metric], dict[str, object]]  # a family's class and attributes but its samples
_CATALOGS: dict[int, tuple[Iterable[MetricSpec], dict[str, MetricSpec], dict[str, _Template]]] = {}

# A sample as prometheus_client's Sample(name, labels, value) builds it, without the namedtuple's Python-level
# constructor: the tuple type's own, with the remaining fields (timestamp, exemplar, ...) None.
assert Sample._fields[:3] == ("name", "labels", "value"), Sample._fields
_SAMPLE_REST = (None,) * (len(Sample._fields) - 3)
_new_tuple = tuple.__new__
_new_object = object.__new__


def _catalog(catalog: Iterable[MetricSpec]) -> tuple[dict[str, MetricSpec], dict[str, _Template]]:
    """name → spec and name → family template, kept per catalog object (a collector builds a Families
    every cycle; its catalog is a module's tuple)."""
    found = _CATALOGS.get(id(catalog))
    if found is None or found[0] is not catalog:
        specs: dict[str, MetricSpec] = {spec.name: spec for spec in catalog}
        if not isinstance(catalog, tuple):  # only immutable catalogs can be remembered
            return specs, {}
        if len(_CATALOGS) >= 64:  # catalogs are module constants; a tuple built per call must not pile up
            _CATALOGS.clear()
        found = _CATALOGS[id(catalog)] = (catalog, specs, {})
    return found[1], found[2]


def checked_labels(spec: MetricSpec, labels: dict[str, str]) -> dict[str, str]:
    """`labels` as `Families.extend` takes them, refused unless they are exactly the spec's, in its order."""
    if tuple(labels) != spec.labels or not all(type(v) is str for v in labels.values()):
        raise ValueError(f"metric {spec.name} takes labels {spec.labels} as strings, got {labels}")
    return labels


class Families:
    """Collects samples for one cycle against a catalog and yields only the families that got samples."""

    def __init__(self, catalog: Iterable[MetricSpec]) -> None:
        self._specs, self._templates = _catalog(catalog)
        self._families: dict[str, Metric] = {}

    def _new(self, name: str) -> Metric:
        """A new family for `name` (in the catalog), as `MetricSpec.new_family` makes it but from a
        template kept per catalog: ~20 families per cycle come out of here."""
        template = self._templates.get(name)
        if template is None:
            proto = self._specs[name].new_family()
            attrs = {k: v for k, v in proto.__dict__.items() if k != "samples"}
            template = self._templates[name] = (type(proto), attrs)
        family = _new_object(template[0])
        attributes = family.__dict__
        attributes.update(template[1])
        attributes["samples"] = []
        self._families[name] = family
        return family

    def _family(self, name: str, labels: dict[str, str], /) -> tuple[Metric, list[str]]:
        spec = self._specs.get(name)
        if spec is None:
            raise KeyError(f"metric {name} is not in the catalog")
        if set(labels) != set(spec.labels):
            raise ValueError(f"metric {name} takes labels {spec.labels}, got {sorted(labels)}")
        family = self._families.get(name) or self._new(name)
        return family, [str(labels[label]) for label in spec.labels]

    def add(self, name: str, value: float, /, **labels: str) -> None:
        # The hot path of most collectors: when the label names are the spec's, in its order, the sample
        # is appended as the family's own add_metric would build it (a counter's samples are named
        # `<family>_total`, the catalog name); otherwise `_family` checks the names and orders the values.
        spec = self._specs.get(name)
        if spec is None or tuple(labels) != spec.labels:
            family, values = self._family(name, labels)
            labels = dict(zip(self._specs[name].labels, values, strict=True))
        else:
            if not all(type(v) is str for v in labels.values()):
                labels = {k: str(v) for k, v in labels.items()}
            family = self._families.get(name) or self._new(name)
        family.samples.append(_new_tuple(Sample, (name, labels, float(value)) + _SAMPLE_REST))

    def append(self, name: str, labels: dict[str, str], value: float, /) -> None:
        """A sample whose label dict was checked with `check_labels` (it may be shared between cycles)."""
        family = self._families.get(name) or self._new(name)
        family.samples.append(_new_tuple(Sample, (name, labels, value) + _SAMPLE_REST))

    def extend(self, rows: Iterable[tuple[str, dict[str, str], float | int | bool | None]], /) -> None:
        """(name, labels, value) samples, in order; a None value is skipped (no answer, no sample).

        The hot path of the GPU collector: its label dicts were built with `checked_labels` once per GPU
        and are shared by every cycle's samples (nothing mutates a sample's labels), so nothing is checked
        here; a name not in the catalog still fails."""
        families, new, rest = self._families, _new_tuple, _SAMPLE_REST
        for name, labels, value in rows:
            if value is None:
                continue
            family = families.get(name) or self._new(name)
            family.samples.append(new(Sample, (name, labels, float(value)) + rest))

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
