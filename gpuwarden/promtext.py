"""The Prometheus text format (0.0.4) of metric families: the bytes of prometheus_client's generate_latest.

generate_latest lives in prometheus_client.exposition, whose imports (ssl, http.server, urllib.request,
wsgiref: the library's own servers and push client) cost the agent 2.8 MB (see gpuwarden/deferred.py).
This is its text-format path for the families the agent serves, with the library's own name escaping and
number formatting; tests/unit/test_promtext.py renders every family the agent exposes both ways and
compares the bytes.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import escape_label_name, escape_metric_name
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

# OpenMetrics types as the text format names them (generate_latest's munging), and the name suffix added.
_TEXT_TYPE = {"info": "gauge", "stateset": "gauge", "gaugehistogram": "histogram", "unknown": "untyped"}
_NAME_SUFFIX = {"counter": "_total", "info": "_info"}
# OpenMetrics-only samples: the text format puts each kind in a gauge family of its own after the family.
_SEPARATE = ("_created", "_gsum", "_gcount")


def render(families: Iterable[Metric]) -> bytes:
    out: list[str] = []
    for family in families:
        name = family.name + _NAME_SUFFIX.get(family.type, "")
        kind = _TEXT_TYPE.get(family.type, family.type)
        doc = family.documentation.replace("\\", r"\\").replace("\n", r"\n")
        _head(out, name, doc, kind)
        separate: dict[str, list[str]] = {}
        for sample in family.samples:
            suffix = next((s for s in _SEPARATE if sample.name == family.name + s), None)
            if suffix is None:
                out.append(_line(sample))
            else:
                separate.setdefault(suffix, []).append(_line(sample))
        for suffix, lines in sorted(separate.items()):
            _head(out, family.name + suffix, doc, "gauge")
            out.extend(lines)
    return "".join(out).encode("utf-8")


def _head(out: list[str], name: str, doc: str, kind: str) -> None:
    escaped = escape_metric_name(name)
    out.append(f"# HELP {escaped} {doc}\n# TYPE {escaped} {kind}\n")


def _line(sample: Sample) -> str:
    labels = ""
    if sample.labels:
        pairs = (f'{escape_label_name(k)}="{_label_value(v)}"' for k, v in sorted(sample.labels.items()))
        labels = "{" + ",".join(pairs) + "}"
    timestamp = "" if sample.timestamp is None else f" {int(float(sample.timestamp) * 1000):d}"
    return f"{escape_metric_name(sample.name)}{labels} {floatToGoString(sample.value)}{timestamp}\n"


def _label_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
