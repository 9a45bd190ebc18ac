"""`gpuwarden dashboards build` and `gpuwarden rules build`: arguments here, generators imported only when
the verb runs (grafanalib and every collector's catalog stay out of the agent's start-up)."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

JOB = "gpuwarden"  # Mixin.job's default, repeated so that parsing imports nothing


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="deploy directory to write into (grafana/, prometheus/, ...)")
    p.add_argument("--job", default=JOB, help="the agents' scrape job (the job= of every query)")


def _job(args: argparse.Namespace) -> str:
    """The job goes into every query between quotes: plain label-value characters only."""
    if not re.fullmatch(r"[A-Za-z0-9_.:-]+", args.job):
        from gpuwarden.config import ConfigError

        raise ConfigError([f"--job: {args.job!r} must be letters, digits, '_', '.', ':' or '-'"])
    return str(args.job)


def _write(out: Path, files: dict[str, str]) -> int:
    for rel, text in sorted(files.items()):
        path = out / rel
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        except OSError as err:
            print(f"gpuwarden: cannot write {path}: {err.strerror or err}", file=sys.stderr)
            return 1
        print(path)
    return 0


def dashboards(args: argparse.Namespace) -> int:
    from gpuwarden.alert_rules.mixin import Mixin
    from gpuwarden.dashboards import build

    return _write(Path(args.out), build.render(Mixin(job=_job(args))))


def rules(args: argparse.Namespace) -> int:
    from gpuwarden.alert_rules import build
    from gpuwarden.alert_rules.mixin import Mixin

    return _write(Path(args.out), build.render(Mixin(job=_job(args))))
