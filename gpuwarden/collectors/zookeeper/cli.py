"""`gpuwarden zookeeper check`: the quorum verdict on a terminal, for on-call.

Replaces `echo stat | nc localhost 2181 | grep Mode`, which asks one server and trusts it. Exit codes:
0 OK, 1 DEGRADED, 2 NO_QUORUM or SPLIT, 3 UNKNOWN (whitelist), 78 bad config or arguments.
"""

from __future__ import annotations

import argparse
import json
import socket
from typing import TYPE_CHECKING

from gpuwarden import config as configmod
from gpuwarden.address import parse_zookeeper
from gpuwarden.config import AgentConfig, ConfigError

if TYPE_CHECKING:
    from gpuwarden.collectors.zookeeper.parse import ServerStatus
    from gpuwarden.collectors.zookeeper.verdict import EnsembleVerdict


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--servers", help="voting members, host:port,host:port (default: from --config, else localhost:2181)"
    )
    p.add_argument("--observers", default="", help="observers, host:port,...")
    p.add_argument("--config", help="agent config: collectors.zookeeper.servers, else fleet.hosts")
    p.add_argument("--timeout", type=float, default=None, help="seconds per four-letter word (default 1)")
    p.add_argument("--json", action="store_true", help="print the verdict as JSON")


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _ensemble(args: argparse.Namespace, cfg: AgentConfig) -> tuple[list[str], list[str]]:
    """(voters, observers) from the flags, then the config, then localhost:2181."""
    zk = cfg.collector_settings("zookeeper")
    voters, observers = _split(args.servers or ""), _split(args.observers)
    problems = []
    if args.servers is not None and not voters:
        problems.append("--servers: empty; give host:port,host:port")  # not a silent localhost:2181
    if args.timeout is not None and not args.timeout > 0:
        problems.append(f"--timeout: must be a number of seconds above 0, not {args.timeout:g}")
    if problems:
        raise ConfigError(problems)
    if not voters:
        voters = list(zk.servers) or list(cfg.fleet.hosts) or ["localhost:2181"]
        observers = observers or list(zk.observers)
    for flag, addresses in (("--servers", voters), ("--observers", observers)):
        for address in addresses:
            try:
                host, port = parse_zookeeper(address)
                socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except ValueError as err:
                problems.append(f"{flag}: {err}")
            except OSError:
                # A name that does not resolve is a typo far more often than an outage: say so, exit 78.
                problems.append(f"{flag}: {address!r}: host name does not resolve")
    if problems:
        raise ConfigError(problems)
    return voters, observers


def _row(s: ServerStatus, role: str) -> str:
    avg, peak = s.stat("zk_avg_latency"), s.stat("zk_max_latency")
    latency = f"{avg:g}/{peak:g}" if avg is not None and peak is not None else "-"
    outstanding = s.stat("zk_outstanding_requests")
    ruok = {True: "imok", False: "no", None: "-"}[s.ruok]
    return (
        f"  {s.address:<24} {role:<8} {s.mode.value:<18} {ruok:<5} {latency:<12} "
        f"{'-' if outstanding is None else f'{outstanding:g}'}"
    )


def render(name: str, verdict: EnsembleVerdict, status: dict[str, ServerStatus], observers: list[str]) -> str:
    lines = [f"ZooKeeper ensemble {name}: {verdict.verdict.value}"]
    lines += [f"  {reason}" for reason in verdict.reasons]
    if verdict.tolerable_failures is not None and verdict.quorum_ok:
        lines.append(f"  tolerable failures: {verdict.tolerable_failures}")
    lines.append(f"  {'SERVER':<24} {'ROLE':<8} {'MODE':<18} {'RUOK':<5} {'LAT ms a/m':<12} OUTSTANDING")
    lines += [_row(s, "observer" if a in observers else "voter") for a, s in status.items()]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from gpuwarden.collectors.zookeeper.collector import check  # not loaded by other commands' parsers

    cfg = configmod.load(args.config)  # a ConfigError (bad file or flag) becomes exit 78 in cli.main
    voters, observers = _ensemble(args, cfg)
    zk = cfg.collector_settings("zookeeper")
    verdict, status = check(voters, observers, args.timeout or zk.probe_timeout, zk.max_reply_bytes)
    if args.json:
        print(
            json.dumps(
                {
                    "ensemble": zk.ensemble,
                    "verdict": verdict.verdict.value,
                    "reasons": list(verdict.reasons),
                    "leader": verdict.leader,
                    "tolerable_failures": verdict.tolerable_failures,
                    "servers": {a: s.mode.value for a, s in status.items()},
                },
                indent=2,
            )
        )
    else:
        print(render(zk.ensemble, verdict, status, observers))
    return verdict.exit_code
