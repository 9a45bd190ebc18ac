"""`gpuwarden dashboards build` and `gpuwarden rules build`: arguments here, generators imported only when
the verb runs (grafanalib and every collector's catalog stay out of the agent's start-up)."""

from __future__ import annotations

import argparse
from pathlib import Path

JOB = "gpuwarden"  # Mixin.job's default, repeated so that parsing imports nothing


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="deploy directory to write into (grafana/, prometheus/, ...)")
    p.add_argument("--job", default=JOB, help="the agents' scrape job (the job= of every query)")


def _write(out: Path, files: dict[str, str]) -> int:
    for rel, text in sorted(files.items()):
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(path)
    return 0


def dashboards(args: argparse.Namespace) -> int:
    from gpuwarden.alert_rules.mixin import Mixin
    from gpuwarden.dashboards import build

    return _write(Path(args.out), build.render(Mixin(job=args.job)))


def rules(args: argparse.Namespace) -> int:
    from gpuwarden.alert_rules import build
    from gpuwarden.alert_rules.mixin import Mixin

    return _write(Path(args.out), build.render(Mixin(job=args.job)))
