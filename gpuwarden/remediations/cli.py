"""`gpuwarden runs [--json] [--since SECONDS] [--run ID]`: the remediation runs from the local audit log."""

from __future__ import annotations

import argparse
import json
import sys
import time

from gpuwarden import config as configmod
from gpuwarden.remediations.audit import AuditCorrupt, read, result_text, runs


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="agent config (for remediation.audit_log)")
    p.add_argument("--audit-log", help="audit log file (overrides the config)")
    p.add_argument("--since", type=float, help="only runs of the last SECONDS")
    p.add_argument("--run", help="every record of one run id")
    p.add_argument("--json", action="store_true", help="print JSON")


def cli(args: argparse.Namespace) -> int:
    path = args.audit_log or configmod.load(args.config).remediation.audit_log
    since = time.time() - args.since if args.since is not None else None
    try:
        records = list(read(path, since))
    except FileNotFoundError:
        print(f"gpuwarden: no audit log at {path} (no remediation has run here)", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"gpuwarden: cannot read {path}: {err.strerror}", file=sys.stderr)
        return 1
    except AuditCorrupt as err:
        print(f"gpuwarden: {path}: {err}", file=sys.stderr)
        return 1
    if args.run:
        out: list[dict[str, object]] = [r for r in records if r["run"] == args.run]
    else:
        out = runs(records)
    if args.json:
        print(json.dumps(out, indent=2, sort_keys=True))
        return 0
    if args.run:
        for r in out:
            extra = {k: v for k, v in r.items() if k not in ("ts", "run", "step", "playbook", "target")}
            print(f"{_when(r['ts'])}  {r['step']:<9} {json.dumps(extra, sort_keys=True)}")
        return 0
    print(f"{'STARTED':<20} {'RUN':<12} {'PLAYBOOK':<16} {'TARGET':<10} {'RESULT':<11} REASON")
    for r in out:
        result = result_text(r)
        print(f"{_when(r['started'])} {r['run']:<12} {r['playbook']:<16} {r['target']:<10} {result:<11} "
              f"{r.get('detail') or r.get('reason') or ''}")  # fmt: skip
    return 0


def _when(ts: object) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(ts)))  # type: ignore[arg-type]


def add_quarantine_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    listing = sub.add_parser("list", help="the quarantined GPUs")
    releasing = sub.add_parser("release", help="give a GPU back (after the hardware was inspected)")
    releasing.add_argument("uuid", help="the GPU's UUID (GPU-...)")
    for q in (listing, releasing):
        q.add_argument("--config", help="agent config (for remediation.playbooks.gpu_quarantine)")


def quarantine(args: argparse.Namespace) -> int:
    """`gpuwarden quarantine list|release UUID`: on-call gives a GPU back after inspecting it."""
    from gpuwarden.remediations.playbooks.gpu_quarantine import GpuQuarantineSettings, load, release

    remediation = configmod.load(args.config).remediation
    settings = remediation.playbook("gpu_quarantine")
    assert isinstance(settings, GpuQuarantineSettings)
    try:
        if args.action == "list":
            for uuid, entry in sorted(load(settings.quarantine_file).items()):
                since = _when(entry.get("at", 0))
                print(f"GPU {entry.get('gpu', '?')}  {uuid}  since {since}  {entry.get('reason', '')}")
            return 0
        target = remediation.targets.get(settings.target)
        print(release(settings, target.env_file if target else None, args.uuid))
        return 0
    except KeyError as err:
        print(f"gpuwarden: {err.args[0]}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as err:
        print(f"gpuwarden: {settings.quarantine_file}: {err}", file=sys.stderr)
        return 1
