"""Every subcommand. Thin: parse, call into the package, print, return an exit code."""

from __future__ import annotations

import argparse
import errno
import os
import sys

import gpuwarden
from gpuwarden import config as configmod
from gpuwarden.address import parse_listen
from gpuwarden.config_base import EX_CONFIG, ConfigError

# Binding errors that restarting cannot fix: another program holds the port, or the agent may not bind it
# (a port below 1024 without CAP_NET_BIND_SERVICE). Exit 78, so systemd does not restart-loop on them. An
# address that is not (yet) on this host (EADDRNOTAVAIL: an interface that comes up late) exits 1, so
# systemd's Restart=on-failure retries within its start limits. docs/operations.md says the same.
LISTEN_CONFIG_ERRORS = {errno.EADDRINUSE, errno.EACCES}


def cmd_agent(args: argparse.Namespace) -> int:
    from gpuwarden.agent.daemon import Agent

    if args.listen:
        try:
            parse_listen(args.listen)
        except ValueError as err:
            raise ConfigError([f"--listen: {err}"]) from None
    cfg = configmod.load(args.config)
    try:
        return Agent(cfg, args.config, args.listen, args.log_format).run()
    except OSError as err:  # only the listening socket can fail before the main loop runs
        key, listen = ("--listen", args.listen) if args.listen else ("agent.listen", cfg.agent.listen)
        if err.errno in LISTEN_CONFIG_ERRORS:
            raise ConfigError([f"{key}: cannot listen on {listen}: {os.strerror(err.errno)}"]) from None
        where = f": {err.filename}" if err.filename else ""
        print(f"gpuwarden: cannot start: {err.strerror or err}{where}", file=sys.stderr)
        return 1


def cmd_check_config(args: argparse.Namespace) -> int:
    configmod.load(args.file)
    print("OK")
    return 0


def cmd_config_docs(args: argparse.Namespace) -> int:
    from gpuwarden import docgen

    sys.stdout.write(docgen.render())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpuwarden", description="Per-node SRE agent for GPU inference fleets"
    )
    parser.add_argument("--version", action="version", version=f"gpuwarden {gpuwarden.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("agent", help="run the agent (the systemd service)")
    p.add_argument("--config", help="YAML config file (default: built-in defaults)")
    p.add_argument("--listen", help="HOST:PORT to serve on, overrides agent.listen ([::1]:9837 for IPv6)")
    p.add_argument("--log-format", choices=["text", "json"], help="overrides agent.log_format")
    p.set_defaults(func=cmd_agent)

    p = sub.add_parser("check-config", help="validate a config file; exit 78 on errors")
    p.add_argument("file")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("config-docs", help="print the configuration reference (docs/configuration.md)")
    p.set_defaults(func=cmd_config_docs)

    # Subcommands of the other parts register below, one block each.
    # --- gpu ---
    from gpuwarden.collectors.gpu import record as gpu_record

    p = sub.add_parser("gpu", help="GPU (NVML) tools")
    gpu = p.add_subparsers(dest="gpu_command", required=True)
    p = gpu.add_parser("record", help="record what NVML answers on this node into a JSON fixture for replay")
    p.add_argument("--out", required=True, help="JSON file to write")
    p.set_defaults(func=gpu_record.cli)
    # --- network / doctor ---
    from gpuwarden.collectors.doctor import command as doctor_command

    p = sub.add_parser("doctor", help="preflight checks; exit 0 all pass, 1 a failure, 2 could not run")
    doctor_command.add_arguments(p)
    p.set_defaults(func=doctor_command.cli)
    # --- zookeeper / fleet ---
    from gpuwarden.collectors.zookeeper import cli as zk_cli
    from gpuwarden.fleet import cli as fleet_cli

    p = sub.add_parser("zookeeper", help="ZooKeeper tools")
    zookeeper = p.add_subparsers(dest="zookeeper_command", required=True)
    p = zookeeper.add_parser("check", help="quorum verdict (exit 0 OK, 1 DEGRADED, 2 lost, 3 UNKNOWN)")
    zk_cli.add_arguments(p)
    p.set_defaults(func=zk_cli.run)
    p = sub.add_parser("fleet", help="fleet coordination on ZooKeeper")
    fleet_sub = p.add_subparsers(dest="fleet_command", required=True)
    p = fleet_sub.add_parser("ls", help="registered agents, their health, budget leases and the leader")
    fleet_cli.add_ls_arguments(p)
    p.set_defaults(func=fleet_cli.ls)
    p = fleet_sub.add_parser(
        "hold", help="run a command (an upgrade) while holding this node's slot of the fleet budget"
    )
    fleet_cli.add_hold_arguments(p)
    p.set_defaults(func=fleet_cli.hold)
    # --- remediation, on call: thin clients of the agent's /v1 API ---
    from gpuwarden.remediations import oncall

    p = sub.add_parser("remediate", help="run a playbook now (or --dry-run it) through the agent")
    oncall.add_remediate(p)
    p.set_defaults(func=oncall.remediate)
    p = sub.add_parser("runs", help="remediation runs, newest first (from the agent, or --audit-log)")
    oncall.add_common(p)
    p.add_argument("--limit", type=int, default=50, help="at most this many runs")
    p.add_argument("--playbook", help="only runs of this playbook")
    p.add_argument("--since", type=float, help="only runs started in the last SECONDS")
    p.add_argument("--audit-log", help="read this audit log file instead of asking the agent")
    p.set_defaults(func=oncall.runs)
    p = sub.add_parser("run", help="one remediation run: who, why, the plan, every step")
    p.add_argument("id", help="run id (from `gpuwarden runs`)")
    oncall.add_common(p)
    p.set_defaults(func=oncall.run)
    p = sub.add_parser("pause", help="stop starting remediations (all, or --playbook) until resumed")
    oncall.add_pause(p)
    p.set_defaults(func=oncall.pause)
    p = sub.add_parser("resume", help="allow remediations again after a pause")
    oncall.add_pause(p)
    p.set_defaults(func=oncall.resume)
    p = sub.add_parser("reset", help="re-arm an exhausted playbook (--playbook), or leave storm mode")
    oncall.add_reset(p)
    p.set_defaults(func=oncall.reset)
    from gpuwarden.remediations import cli as remediation_cli

    p = sub.add_parser("quarantine", help="GPUs the gpu_quarantine playbook took out of service")
    remediation_cli.add_quarantine_arguments(p)
    p.set_defaults(func=remediation_cli.quarantine)
    # --- engine / worker ---
    from gpuwarden.worker import main as worker_main  # stdlib only; the model stack loads on start

    p = sub.add_parser("worker", help="run the reference inference worker (KServe v2, vLLM-style metrics)")
    worker_main.add_arguments(p)
    p.set_defaults(func=worker_main.run)
    # --- dashboards / rules ---
    from gpuwarden.alert_rules import cli as generate_cli

    for verb, func, what in (
        ("dashboards", generate_cli.dashboards, "Grafana dashboards into DIR/grafana/"),
        ("rules", generate_cli.rules, "Prometheus rules and config, Alertmanager config into DIR/"),
    ):
        p = sub.add_parser(verb, help=f"generate {what}")
        verb_sub = p.add_subparsers(dest=f"{verb}_command", required=True)
        p = verb_sub.add_parser("build", help=f"write the {what}")
        generate_cli.add_arguments(p)
        p.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as err:  # the one place a bad config or flag becomes lines on stderr and exit 78
        for problem in err.problems:
            print(f"config error: {problem}", file=sys.stderr)
        return EX_CONFIG
    except KeyboardInterrupt:
        return 130
