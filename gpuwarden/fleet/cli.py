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
