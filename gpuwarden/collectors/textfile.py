"""Textfile collector: re-exports `*.prom` files that other programs on the node write.

The node_exporter convention: a cron job or a deploy hook writes metrics (model version, last fine-tune,
burn-in results) to a file in the Prometheus text format, atomically (write `x.prom.$$`, then rename), and
the agent serves them with its own. These series are the writers' own, so they are outside the catalog;
a file that does not parse is skipped as a whole (never half-served) and reported.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator

from prometheus_client.parser import text_string_to_metric_families
from pydantic import Field

from gpuwarden.agent.registry import CollectorContext, CollectorSettings, Item, register
from gpuwarden.catalog import Families, MetricSpec
from gpuwarden.health import Action, HealthResult, State
from gpuwarden.paths import read_text


class TextfileSettings(CollectorSettings):
    enabled: bool = Field(False, description="run this collector")
    directory: str = Field(
        "/var/lib/gpuwarden/textfile", description="host directory whose `*.prom` files are re-exported"
    )


CATALOG = (
    MetricSpec(
        "gpuwarden_textfile_mtime_seconds",
        "gauge",
        "Modification time of each textfile, so stale writers can be alerted on.",
        labels=("file",),
        unit="seconds",
    ),
    MetricSpec(
        "gpuwarden_textfile_scrape_error",
        "gauge",
        "1 if any textfile could not be read or parsed in the last collection.",
    ),
)


@register("textfile", TextfileSettings)
class TextfileCollector:
    def __init__(self, settings: TextfileSettings, ctx: CollectorContext) -> None:
        self.directory = ctx.paths.root(settings.directory)

    def close(self) -> None:
        pass

    def collect(self) -> Iterator[Item]:
        fams = Families(CATALOG)
        problems: list[str] = []
        seen: set[str] = set()
        for path in sorted(glob.glob(os.path.join(self.directory, "*.prom"))):
            name = os.path.basename(path)
            text = read_text(path)
            try:
                if text is None:
                    raise ValueError("cannot read")
                families = list(text_string_to_metric_families(text))
                clash = [f.name for f in families if f.name.startswith("gpuwarden_") or f.name in seen]
                if clash:
                    raise ValueError(f"metric {clash[0]} is reserved or defined twice")
            except (ValueError, IndexError, TypeError) as err:  # the parser's ways of saying 'bad line'
                problems.append(f"{name}: {err}")
                continue
            seen.update(f.name for f in families)
            fams.add("gpuwarden_textfile_mtime_seconds", os.stat(path).st_mtime, file=name)
            yield from families
        fams.add("gpuwarden_textfile_scrape_error", bool(problems))
        yield from fams
        if problems:
            yield HealthResult("textfile", State.DEGRADED, "; ".join(problems), Action.FIX_CONFIG)
        else:
            yield HealthResult("textfile", State.HEALTHY, f"{len(seen)} families from {self.directory}")
