"""`gpuwarden doctor`: arguments and the thin glue from config to findings to output and exit code."""

from __future__ import annotations

import argparse
import sys

from gpuwarden import config as configmod


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML config file (default: built-in defaults)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--skip-checksums", action="store_true", help="do not hash the model weight files")


def cli(args: argparse.Namespace) -> int:
    # Imported here: every `gpuwarden` command (the agent too) builds this parser.
    from gpuwarden.agent import context
    from gpuwarden.collectors.doctor.findings import Finding, Status, exit_code
    from gpuwarden.collectors.doctor.report import as_json, table
    from gpuwarden.collectors.doctor.run import run_checks

    cfg = configmod.load(args.config)  # a ConfigError becomes exit 78 in cli.main
    inputs = context.doctor_inputs(
        cfg, checksums=not args.skip_checksums, progress=sys.stderr.isatty() and not args.json
    )
    try:
        findings = run_checks(inputs)
    except Exception as err:  # run_checks guards each check; this is the last line before a traceback
        findings = [Finding("doctor", Status.ERROR, f"could not run: {type(err).__name__}: {err}")]
    print(as_json(findings) if args.json else table(findings))
    return exit_code(findings)
