"""Which series exist: every collector's catalog plus the remediation engine's, and the names a PromQL
expression reads, so a test can say that every query names only declared series."""

from __future__ import annotations

import re
from collections.abc import Iterable

from gpuwarden.agent.runner import CATALOG as RUNNER
from gpuwarden.catalog import MetricSpec
from gpuwarden.collectors.doctor.collector import CATALOG as DOCTOR
from gpuwarden.collectors.engine.catalog import CATALOG as ENGINE
from gpuwarden.collectors.gpu.metrics import CATALOG as GPU
from gpuwarden.collectors.inference.catalog import CATALOG as INFERENCE
from gpuwarden.collectors.network.catalog import CATALOG as NETWORK
from gpuwarden.collectors.node import CATALOG as NODE
from gpuwarden.collectors.textfile import CATALOG as TEXTFILE
from gpuwarden.collectors.zookeeper.collector import CATALOG as ZOOKEEPER
from gpuwarden.remediations.metrics import CATALOG as REMEDIATION

CATALOGS: dict[str, tuple[MetricSpec, ...]] = {
    "agent": RUNNER,
    "gpu": GPU,
    "inference": INFERENCE,
    "engine": ENGINE,
    "network": NETWORK,
    "node": NODE,
    "textfile": TEXTFILE,
    "zookeeper": ZOOKEEPER,
    "doctor": DOCTOR,
    "remediation": REMEDIATION,
}

# Series Prometheus itself makes for every target.
PROMETHEUS_SERIES = frozenset({"up", "scrape_duration_seconds"})


def declared() -> set[str]:
    """Every name a query may read: catalog names, histogram parts, Prometheus' own per-target series."""
    names = set(PROMETHEUS_SERIES)
    for catalog in CATALOGS.values():
        for spec in catalog:
            names.add(spec.name)
            if spec.kind == "histogram":
                names |= {f"{spec.name}_bucket", f"{spec.name}_sum", f"{spec.name}_count"}
    return names


def spec(name: str) -> MetricSpec:
    for catalog in CATALOGS.values():
        for s in catalog:
            if s.name == name:
                return s
    raise KeyError(f"{name} is in no catalog")


def name(metric: str) -> str:
    """`metric` checked against the catalogs: queries are built from names that exist, or building fails."""
    spec(metric)
    return metric


# A metric name in PromQL: an identifier followed by a selector, a range, an operator or the end; label
# names inside {...} and by/without (...) and function names before "(" are removed before matching.
_BRACES = re.compile(r"\{[^}]*\}")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_STRINGS = re.compile(r'"[^"]*"')
_IDENT = re.compile(r"(?<![\w:.$])([a-zA-Z_:][\w:]*+)(?!\s*\()")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "bool", "offset", "inf", "nan"}
)


def names_in(expr: str) -> set[str]:
    """The series names an expression reads (recording-rule names included)."""
    text = _STRINGS.sub('""', expr)
    text = _BRACES.sub("", _GROUPING.sub("", text))
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries: [5m], [$__rate_interval]
    found = {m.group(1) for m in _IDENT.finditer(text)}
    return {n for n in found if n.lower() not in _KEYWORDS and not re.fullmatch(r"\d+\w*", n)}


def undeclared(exprs: Iterable[str], recorded: Iterable[str] = ()) -> dict[str, set[str]]:
    """Expression → the names in it that no catalog declares and no recording rule records."""
    known = declared() | set(recorded)
    out = {}
    for expr in exprs:
        missing = names_in(expr) - known
        if missing:
            out[expr] = missing
    return out
