"""Validate one textfile as a unit and merge the valid ones into families the agent can serve.

Like node_exporter, a file is served whole or not at all, and one bad file never spoils the page: the
agent's whole exposition must stay parseable (`promtool check metrics`), or Prometheus drops every series
of the node. prometheus_client's text parser is lenient — it accepts a second TYPE line, a `quantile` of
"abc", OpenMetrics-only types, quoted UTF-8 names and timestamps, and renders some of them into text that
Prometheus rejects — so the parsed families are checked against the text format 0.0.4 here, and the
families the agent serves are rebuilt from checked samples, never passed through.

A metric may be split over several files (one per job, say) when every part has the same type; a name
that clashes with another file's metric or with the agent's own (`gpuwarden_*`, `process_*`, `python_*`)
rejects the file that comes later in name order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

RESERVED_PREFIXES = ("gpuwarden_", "process_", "python_")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")  # the text format 0.0.4's
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_SAMPLE_NAME = re.compile(r"[^\s{]+")

Key = tuple[str, tuple[tuple[str, str], ...]]


class Invalid(Exception):
    """Why a file is skipped: `reason` is a short code (a label value), the message is for people."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Family:
    name: str  # base name, as prometheus_client keeps it (a counter's without `_total`)
    type: str  # one of TYPES
    help: str
    file: str
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)
    keys: set[Key] = field(default_factory=set)

    @property
    def served(self) -> str:
        """The name on the TYPE line the agent writes."""
        return self.name + "_total" if self.type == "counter" else self.name

    def sample_names(self) -> set[str]:
        n = self.name
        return {
            "counter": {n + "_total"},
            "gauge": {n},
            "untyped": {n},
            "summary": {n, n + "_sum", n + "_count"},
            "histogram": {n + "_bucket", n + "_sum", n + "_count"},
        }[self.type]

    def claims(self) -> set[str]:
        """Every name this family writes: no other family may write one of them."""
        return self.sample_names() | {self.served}

    def metric(self) -> Metric:
        m = Metric(self.name, self.help, "unknown" if self.type == "untyped" else self.type)
        for name, labels, value in self.samples:
            m.add_sample(name, labels, value)
        return m


def parse_file(text: str, file: str) -> list[Family]:
    """The families of one file, every rule checked; Invalid names the first rule broken."""
    _check_comments(text)
    try:
        parsed = list(text_string_to_metric_families(text))
    except Exception as err:  # noqa: BLE001 - the parser's ways of saying "bad line" vary by input
        raise Invalid("parse_error", f"not the Prometheus text format: {err}"[:300]) from None
    local = Served()
    for metric in parsed:
        family = _family(metric, file)
        if family.samples:  # a TYPE or HELP line alone serves nothing
            local.add(family)
    return list(local.families.values())


def _check_comments(text: str) -> None:
    """The HELP/TYPE rules the parser lets through: one of each per name, TYPE before samples, 0.0.4 types."""
    typed: set[str] = set()
    helped: set[str] = set()
    sampled: set[str] = set()
    for line in text.split("\n"):
        if not line.startswith("#"):
            m = _SAMPLE_NAME.match(line.lstrip())
            if m:
                sampled.add(m.group(0))
            continue
        parts = line.split(None, 3)
        if len(parts) < 3 or parts[1] not in ("TYPE", "HELP"):
            continue  # a plain comment
        name = parts[2]
        if parts[1] == "HELP":
            if name in helped:
                raise Invalid("duplicate_help", f"second HELP line for {name}")
            helped.add(name)
            continue
        if name in typed or name in sampled:
            raise Invalid("duplicate_type", f"second TYPE line for {name}, or TYPE after its samples")
        typed.add(name)
        kind = parts[3].strip() if len(parts) > 3 else ""
        if kind not in TYPES:
            raise Invalid(
                "unsupported_type", f"{name}: type {kind[:30]!r} is not one of the text format's {TYPES}"
            )


def _family(metric: Metric, file: str) -> Family:
    kind = "untyped" if metric.type == "unknown" else metric.type
    if kind not in TYPES:
        raise Invalid("unsupported_type", f"{metric.name}: type {kind!r} is OpenMetrics-only")
    help_text = metric.documentation or f"Metric read from textfile {file}."
    family = Family(metric.name, kind, help_text, file)
    for name in family.claims():
        _check_name(name)
    allowed = family.sample_names()
    for sample in metric.samples:
        if sample.name not in allowed:
            raise Invalid("invalid_name", f"sample {sample.name} does not belong to {kind} {family.served}")
        if sample.timestamp is not None:
            raise Invalid("timestamp", f"{sample.name} carries a timestamp; textfiles may not")
        _check_labels(family, sample.name, sample.labels)
        key = (sample.name, tuple(sorted(sample.labels.items())))
        if key in family.keys:
            raise Invalid("duplicate_series", f"{sample.name}{dict(key[1])} appears twice")
        family.keys.add(key)
        family.samples.append((sample.name, dict(sample.labels), float(sample.value)))
    return family


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise Invalid("invalid_name", f"{name[:60]!r} is not a valid metric name")
    if name.startswith(RESERVED_PREFIXES):
        raise Invalid("reserved_name", f"{name} is reserved for the agent's own series")


def _check_labels(family: Family, sample: str, labels: dict[str, str]) -> None:
    for label in labels:
        if not _LABEL.match(label) or label.startswith("__"):
            raise Invalid("invalid_label", f"{sample}: {label[:60]!r} is not a valid label name")
    # Only a summary's quantile samples carry `quantile`, only a histogram's buckets `le`, as numbers.
    special = None
    if family.type == "summary" and sample == family.name:
        special = "quantile"
    elif family.type == "histogram" and sample == family.name + "_bucket":
        special = "le"
    for label, owner in (("quantile", "a summary's quantile samples"), ("le", "a histogram's buckets")):
        if label == special:
            if not _is_float(labels.get(label)):
                raise Invalid("invalid_label", f"{sample}: {label}={labels.get(label)!r} is not a number")
        elif label in labels:
            raise Invalid("invalid_label", f"{sample}: a `{label}` label belongs only to {owner}")


# What both Python's float() and Go's strconv.ParseFloat (Prometheus's parser) read the same way: Python
# also takes spaces and underscores ("  1", "1_0"), which promtool rejects, so plain float() is not enough.
_FLOAT = re.compile(r"[+-]?((\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|[iI][nN][fF]([iI][nN][iI][tT][yY])?)\Z")


def _is_float(value: str | None) -> bool:
    return value is not None and _FLOAT.match(value) is not None


class Served:
    """Families by served name, and which family writes each name, so a clash is one lookup."""

    def __init__(self) -> None:
        self.families: dict[str, Family] = {}
        self._owner: dict[str, Family] = {}

    def add(self, family: Family) -> None:
        self._check(family)
        self._commit(family)

    def add_file(self, families: list[Family]) -> None:
        """All of one file's families (distinct served names, as `parse_file` gives them), or none."""
        for family in families:
            self._check(family)
        for family in families:
            self._commit(family)

    def _check(self, family: Family) -> None:
        for name in family.claims():
            other = self._owner.get(name)
            if other is not None and other.served != family.served:
                raise Invalid(
                    "name_conflict", f"{name} clashes with {other.type} {other.served} of {other.file}"
                )
        existing = self.families.get(family.served)
        if existing is None:
            return
        if existing.type != family.type:
            raise Invalid(
                "name_conflict",
                f"{family.served} is a {family.type} here but a {existing.type} in {existing.file}",
            )
        twice = existing.keys & family.keys
        if twice:
            name, labels = min(twice)
            raise Invalid("duplicate_series", f"{name}{dict(labels)} is also in {existing.file}")

    def _commit(self, family: Family) -> None:
        existing = self.families.get(family.served)
        if existing is None:
            self.families[family.served] = family
            self._owner.update(dict.fromkeys(family.claims(), family))
        else:
            existing.keys |= family.keys
            existing.samples += family.samples
