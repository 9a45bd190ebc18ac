"""Textfile collector: re-exports `*.prom` files that other programs on the node write.

The node_exporter convention: a cron job or a deploy hook writes metrics (model version, last fine-tune,
burn-in results) to a file in the Prometheus text format, atomically (write `x.prom.$$`, then rename), and
the agent serves them with its own. These series are the writers' own, so they are outside the catalog.
Each file is read safely (read.py) and validated as a unit (validate.py); a bad file is skipped whole,
never half-served, and reported with `gpuwarden_textfile_file_error{file,reason}`.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator

from pydantic import Field

from gpuwarden.agent.registry import CollectorContext, CollectorSettings, Item, register
from gpuwarden.catalog import Families, MetricSpec
from gpuwarden.collectors.textfile.read import read_file
from gpuwarden.collectors.textfile.validate import Invalid, Served, parse_file
from gpuwarden.health import Action, HealthResult, State


class TextfileSettings(CollectorSettings):
    enabled: bool = Field(False, description="run this collector")
    directory: str = Field(
        "/var/lib/gpuwarden/textfile", description="host directory whose `*.prom` files are re-exported"
    )
    # A textfile is a few hundred series; parsing costs ~0.5 s per 10 MB of text and the parsed
    # series ~15 times their text, so a bigger file is a runaway writer, not metrics.
    max_file_bytes: int = Field(
        4 << 20, ge=1024, description="largest textfile read; a bigger one is skipped and reported (bytes)"
    )


CATALOG = (
    MetricSpec(
        "gpuwarden_textfile_mtime_seconds",
        "gauge",
        "Modification time of each textfile served, so stale writers can be alerted on.",
        labels=("file",),
        unit="seconds",
    ),
    MetricSpec(
        "gpuwarden_textfile_scrape_error",
        "gauge",
        "1 if any textfile could not be read or was invalid in the last collection.",
    ),
    MetricSpec(
        "gpuwarden_textfile_file_error",
        "gauge",
        "1 for each textfile skipped in the last collection, with why (a short code; health has the detail).",
        labels=("file", "reason"),
    ),
)


@register("textfile", TextfileSettings)
class TextfileCollector:
    def __init__(self, settings: TextfileSettings, ctx: CollectorContext) -> None:
        self.directory = ctx.paths.root(settings.directory)
        self.max_file_bytes = settings.max_file_bytes
        self.log = ctx.log

    def close(self) -> None:
        pass

    def collect(self) -> Iterator[Item]:
        fams = Families(CATALOG)
        problems: list[str] = []
        served = Served()
        for path in sorted(glob.glob(os.path.join(glob.escape(self.directory), "*.prom"))):
            name = os.path.basename(path)
            try:
                got = read_file(path, self.max_file_bytes)
                if got is None:
                    continue
                data, mtime = got
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise Invalid("not_utf8", f"not UTF-8 text (byte {err.start})") from None
                served.add_file(parse_file(text, name))
            except Invalid as err:
                problems.append(f"{name}: {err}")
                fams.add("gpuwarden_textfile_file_error", 1, file=name, reason=err.reason)
                continue
            fams.add("gpuwarden_textfile_mtime_seconds", mtime, file=name)
        for family in served.families.values():
            yield family.metric()
        fams.add("gpuwarden_textfile_scrape_error", bool(problems))
        yield from fams
        if problems:
            yield HealthResult("textfile", State.DEGRADED, "; ".join(problems), Action.FIX_CONFIG)
        else:
            yield HealthResult(
                "textfile", State.HEALTHY, f"{len(served.families)} families from {self.directory}"
            )
