"""Scrape an inference server's /metrics and look series up the way a PromQL selector does.

Only what the profile reads is parsed. Lines of metrics that no selector names are dropped with a cheap
string test: an LLM server's exposition carries hundreds of histogram buckets (token counts, per-step
timings) the signals never read. Of a kept sample line, the series part (`name{labels}`) is parsed by
prometheus_client's text parser the first time it is seen and remembered; the next scrapes repeat the
same series with new values, so they cost a split and a float(). bench/inference.py measures this against
a full prometheus_client parse of the same exposition. Without `names`, everything goes through the
library's parser (the reference the tests compare with).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from gpuwarden.collectors.inference.settings import Selector
from gpuwarden.httpread import Limits, ReadError, request

LabelKey = tuple[tuple[str, str], ...]
Series = dict[LabelKey, float]

# Sample-name suffixes of counters, histograms and summaries (exposition format 0.0.4 and OpenMetrics).
_SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


class ScrapeError(Exception):
    """The target could not be read or parsed; the message is the reason shown in health."""


def fetch(url: str, limits: Limits) -> str:
    """The page at `url`, read within `limits` (total deadline, body cap, same-host redirects)."""
    # Ask for the classic text format: OpenMetrics would add `_created` series and `# EOF` to parse.
    headers = {"Accept": "text/plain;version=0.0.4;q=1,*/*;q=0.1"}
    try:
        reply = request("GET", url, limits, headers=headers)
    except ReadError as err:
        if err.kind == "unreachable":
            raise ScrapeError(f"cannot connect to {err.url}: {err.detail}") from None
        raise ScrapeError(f"scrape of {err.url} failed: {err.detail}") from None
    if reply.status != 200:
        raise ScrapeError(f"scrape of {url} returned HTTP {reply.status}")
    # A login page, a proxy's error page or a JSON API on the wrong port is not an exposition, even
    # when the text parser would find nothing wrong with it (it skips what it does not recognise).
    if reply.content_type in NOT_EXPOSITION:
        raise ScrapeError(
            f"scrape of {reply.url} answered {reply.content_type}, not the Prometheus text format"
        )
    # The text format is UTF-8 by specification.
    return reply.text


# Content types that a metrics endpoint never serves.
NOT_EXPOSITION = frozenset(
    {"text/html", "application/xhtml+xml", "application/json", "text/xml", "application/xml"}
)


def require_any(text: str, names: set[str], url: str) -> None:
    """Fail when the page names none of the mapped metrics: it is not the server the profile describes.

    A substring test on the raw page, so that a family that has no series yet (a counter before its
    first request) still counts as present.
    """
    if not any(name in text for name in names):
        listed = ", ".join(sorted(names)[:4]) + (", ..." if len(names) > 4 else "")
        raise ScrapeError(
            f"{url} exposes none of the mapped metrics ({listed}); is it the server's metrics URL?"
        )


def wanted_names(selectors: Iterable[Selector]) -> set[str]:
    names: set[str] = set()
    for sel in selectors:
        names |= {n for name in sel.names for n in (name, name.removesuffix("_total"))}
    return names


def _wanted(name: str, names: set[str]) -> bool:
    """`name` is a wanted metric, or one of its `_total`/`_bucket`/`_sum`/... samples."""
    if name in names:
        return True
    cut = name.rfind("_")
    if cut <= 0 or name[cut:] not in _SUFFIXES:
        return False
    # `x_total_bucket` belongs to a histogram named `x_total`, which a selector may call `x`.
    stem = name[:cut]
    return stem in names or stem.removesuffix("_total") in names


def sample_lines(text: str, names: set[str]) -> tuple[list[str], set[str]]:
    """The sample lines of the metrics in `names` (base names or sample names), and the names those
    metrics are declared under by HELP/TYPE lines (a family may be declared before it has a series)."""
    kept: list[str] = []
    declared: set[str] = set()
    verdicts: dict[str, bool] = {}  # a histogram repeats its name on every bucket line
    for line in text.splitlines():
        if not line:
            continue
        if line[0] == "#":
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE") and _wanted(parts[2], names):
                declared.add(parts[2])
            continue
        m = _NAME.match(line)
        if m is None:
            raise ScrapeError(f"invalid Prometheus exposition: no metric name in {line[:80]!r}")
        name = m.group(0)
        verdict = verdicts.get(name)
        if verdict is None:
            verdict = verdicts[name] = _wanted(name, names)
        if verdict:
            kept.append(line)
    return kept, declared


Labels = dict[str, str]
# Series text (`name{labels}`) → (sample name, labels), parsed once by prometheus_client. Bounded: a
# server whose label values churn (a per-request label) must not grow the agent without limit.
_SERIES: dict[str, tuple[str, Labels]] = {}
_SERIES_MAX = 20_000


def _series(text: str) -> tuple[str, Labels]:
    known = _SERIES.get(text)
    if known is not None:
        return known
    samples = [s for family in text_string_to_metric_families(text + " 0\n") for s in family.samples]
    if len(samples) != 1:
        raise ValueError(f"not one series: {text[:80]!r}")
    if len(_SERIES) >= _SERIES_MAX:
        _SERIES.clear()
    parsed = _SERIES[text] = (samples[0].name, samples[0].labels)
    return parsed


def _parse_lines(lines: list[str]) -> dict[str, list[tuple[Labels, float]]]:
    samples: dict[str, list[tuple[Labels, float]]] = {}
    for line in lines:
        # `name{labels} value [timestamp]`: a label value may hold spaces and braces, the value cannot.
        close = line.rfind("}")
        if close >= 0:
            series, rest = line[: close + 1], line[close + 1 :]
        else:
            series, _, rest = line.partition(" ")
        fields = rest.split()
        if not 1 <= len(fields) <= 2:
            raise ValueError(f"expected a value and an optional timestamp: {line[:80]!r}")
        name, labels = _series(series)
        samples.setdefault(name, []).append((labels, float(fields[0])))  # float() reads NaN, +Inf
    return samples


@dataclass(frozen=True)
class Exposition:
    """Parsed samples, by sample name → [(labels, value)]."""

    samples: dict[str, list[tuple[dict[str, str], float]]]
    families: frozenset[str] = frozenset()  # every family the page declares, samples or not

    @classmethod
    def parse(cls, text: str, names: set[str] | None = None) -> Exposition:
        """The samples of `names`' metrics (see the module's doc), or of every metric when None."""
        samples: dict[str, list[tuple[Labels, float]]] = {}
        families: set[str] = set()
        try:
            if names is not None:
                lines, declared = sample_lines(text, names)
                return cls(_parse_lines(lines), frozenset(declared))
            for family in text_string_to_metric_families(text):
                families.add(family.name)
                for sample in family.samples:
                    samples.setdefault(sample.name, []).append((sample.labels, sample.value))
        except ValueError as err:
            raise ScrapeError(f"invalid Prometheus exposition: {err}") from None
        return cls(samples, frozenset(families))

    def _lookup(self, metric: str, suffix: str) -> list[tuple[dict[str, str], float]]:
        # The parser names a counter's samples `<family>_total` even when the server (Triton) wrote the
        # bare name, so try both spellings.
        base = metric.removesuffix("_total") if not suffix else metric
        for name in (metric + suffix, base + "_total" + suffix, base + suffix):
            if name in self.samples:
                return self.samples[name]
        return []

    def select(self, sel: Selector, suffix: str = "") -> Series:
        """Series of `sel.metric + suffix` whose labels match, keyed by their sorted labels.

        With several names (a metric renamed between versions) the first that the scrape has is used."""
        out: Series = {}
        found = next((s for s in (self._lookup(name, suffix) for name in sel.names) if s), [])
        for labels, value in found:
            # NaN is what a summary shows before its first observation, or an exporter's "no value";
            # a missing label is the empty string, as in PromQL.
            if math.isnan(value) or not all(re.fullmatch(p, labels.get(k, "")) for k, p in sel.match.items()):
                continue
            key = tuple(sorted(labels.items()))
            out[key] = out.get(key, 0.0) + value
        return out

    def has(self, sel: Selector, suffix: str = "") -> bool:
        """The page declares one of `sel`'s metrics, whatever its labels, even with no series yet (a
        labelled counter before its first increment)."""
        declared = any(n in self.families or n.removesuffix("_total") in self.families for n in sel.names)
        return declared or any(self._lookup(name, suffix) for name in sel.names)

    def gauge(self, sel: Selector) -> float | None:
        values = list(self.select(sel).values())
        if not values:
            return None
        return max(values) if sel.aggregate == "max" else sum(values)
