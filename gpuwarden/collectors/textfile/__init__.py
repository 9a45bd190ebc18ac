"""Textfile collector: re-exports `*.prom` files that other programs on the node write.

The node_exporter convention: a cron job or a deploy hook writes metrics (model version, last fine-tune,
burn-in results) to a file in the Prometheus text format, atomically (write `x.prom.$$`, then rename), and
the agent serves them with its own. These series are the writers' own, so they are outside the catalog.
Each file is read safely (read.py) and validated as a unit (validate.py); a bad file is skipped whole,
never half-served, and reported with `gpuwarden_textfile_file_error{file,reason}`.

This module holds the settings and the catalog (imported to build the config schema); the collector is
collector.py.
"""

from __future__ import annotations

from pydantic import Field

from gpuwarden.agent.registry import CollectorSettings
from gpuwarden.catalog import MetricSpec


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
