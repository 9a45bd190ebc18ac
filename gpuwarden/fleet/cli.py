"""`gpuwarden fleet ls`: the registered agents, their health, the budget holders and the fleet leader."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from gpuwarden import config as configmod
from gpuwarden.config import ConfigError
from gpuwarden.fleet.settings import FleetSettings

EX_UNAVAILABLE = 69  # sysexits.h: a service the command needs is unavailable


def add_ls_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="agent config with the fleet: section")
    p.add_argument("--hosts", help="ZooKeeper servers host:port,... (overrides fleet.hosts)")
    p.add_argument("--cluster", help="fleet name (overrides fleet.cluster)")
    p.add_argument("--json", action="store_true", help="print JSON")


def _settings(args: argparse.Namespace, fleet: FleetSettings) -> FleetSettings:
    """The config's `fleet:` section with --hosts/--cluster applied, validated like the config."""
    update: dict[str, object] = {}
    if args.hosts:
        update["hosts"] = [h.strip() for h in args.hosts.split(",") if h.strip()]
    if args.cluster:
        update["cluster"] = args.cluster
    if update:
        fleet = configmod.from_mapping({"fleet": {**fleet.model_dump(), **update}}).fleet
    if not fleet.hosts:
        raise ConfigError(["fleet.hosts: name the ZooKeeper servers (or pass --hosts)"])
    return fleet


def ls(args: argparse.Namespace) -> int:
    # Imported here: every `gpuwarden` command (the agent too) builds this parser, and kazoo is large.
    from kazoo.exceptions import KazooException
    from kazoo.handlers.threading import KazooTimeoutError

    from gpuwarden.fleet.budget import FleetBudget
    from gpuwarden.fleet.client import FleetClient, FleetUnavailable
    from gpuwarden.fleet.election import FleetLeader
    from gpuwarden.fleet.registration import list_agents

    cfg = configmod.load(args.config)  # a ConfigError (bad file or flag) becomes exit 78 in cli.main
    settings = _settings(args, cfg.fleet)
    # kazoo logs every refused reconnect; the one line below says what matters to the operator.
    logging.getLogger("kazoo").setLevel(logging.CRITICAL)
    try:
        with FleetClient(settings, node="fleet-ls") as fleet:
            agents = list_agents(fleet)
            holders = FleetBudget(fleet, settings.budget).holders()
            leader = FleetLeader(fleet).leader()
    except (FleetUnavailable, KazooException, KazooTimeoutError) as err:
        print(f"gpuwarden: fleet unavailable: {err or type(err).__name__}", file=sys.stderr)
        return EX_UNAVAILABLE
    if args.json:
        out = {
            "cluster": settings.cluster,
            "leader": leader,
            "budget_holders": holders,
            "agents": [{"node": a.node, **a.info} for a in agents],
        }
        print(json.dumps(out, indent=2, sort_keys=True))
        return 0
    print(f"fleet {settings.cluster}: {len(agents)} agent(s), leader {leader or '-'}")
    print(f"budget leases: {', '.join(holders) if holders else 'none'}")
    print(f"{'NODE':<28} {'HEALTH':<10} {'GPUS':>4}  VERSION")
    for a in agents:
        print(f"{a.node:<28} {a.health:<10} {a.gpus:>4}  {a.version}")
    return 0


EX_TEMPFAIL = 75  # sysexits.h: try again later (the budget is full)


def add_hold_arguments(p: argparse.ArgumentParser) -> None:
    add_ls_arguments(p)
    p.add_argument("--node", help="this node's fleet name (default: fleet.node, else the host name)")
    p.add_argument("--reason", required=True, help="why: goes into the lease beside the node")
    p.add_argument("--wait", type=float, default=600.0, help="seconds to wait for a free slot (default 600)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARG...] to run while holding it")


def hold(args: argparse.Namespace) -> int:
    """Hold this node's slot of the fleet budget while COMMAND runs: a rolling upgrade (or any maintenance)
    run on every node at once takes at most `fleet.budget.max_concurrent` nodes at a time, and never while
    those slots are taken by disruptive remediations."""
    import subprocess

    from gpuwarden.fleet.budget import BudgetDenied, FleetBudget
    from gpuwarden.fleet.client import FleetClient, FleetUnavailable

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise ConfigError(["COMMAND: give the command to run after --"])
    if not args.wait > 0:
        raise ConfigError(["--wait: must be > 0"])
    cfg = configmod.load(args.config)
    settings = _settings(args, cfg.fleet)
    logging.getLogger("kazoo").setLevel(logging.CRITICAL)
    try:
        with FleetClient(settings, node=args.node) as fleet:
            try:
                lease = FleetBudget(fleet, settings.budget).acquire(f"maintenance: {args.reason}", args.wait)
            except BudgetDenied as denied:
                print(f"gpuwarden: no fleet budget for {fleet.node}: {denied}", file=sys.stderr)
                return EX_TEMPFAIL
            with lease:
                print(
                    f"gpuwarden: {fleet.node} holds a fleet budget slot; running {command[0]}",
                    file=sys.stderr,
                )
                try:
                    done = subprocess.run(command, check=False)  # an argv, never a shell string
                except OSError as err:
                    print(f"gpuwarden: cannot run {command[0]}: {err.strerror}", file=sys.stderr)
                    return 127
                if lease.lost.is_set():
                    print("gpuwarden: the ZooKeeper session was lost while the command ran", file=sys.stderr)
                return done.returncode
    except FleetUnavailable as err:
        print(f"gpuwarden: fleet unavailable: {err or type(err).__name__}", file=sys.stderr)
        return EX_UNAVAILABLE
