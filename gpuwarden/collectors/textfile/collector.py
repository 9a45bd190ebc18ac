"""The textfile collector: every `*.prom` file of the directory, read safely and validated as a unit."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator

from gpuwarden.agent.registry import CollectorContext, Item, register
from gpuwarden.catalog import Families
from gpuwarden.collectors.textfile import CATALOG, TextfileSettings
from gpuwarden.collectors.textfile.read import read_file
from gpuwarden.collectors.textfile.validate import Invalid, Served, parse_file
from gpuwarden.health import Action, HealthResult, State


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
