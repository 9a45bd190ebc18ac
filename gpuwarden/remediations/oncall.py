"""The on-call verbs, thin clients of the agent's API: `remediate`, `runs`, `run`, `pause`, `resume`,
`reset`.

`--agent` defaults to the local agent named by the config (`agent.listen`); the token comes from
`--token-file` or the config's `api.token_file` (its first token). Output is a table that fits the
terminal, or `--json`. Every error is one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from typing import TYPE_CHECKING, Any

from gpuwarden import config as configmod
from gpuwarden.address import parse_listen
from gpuwarden.agent.api_auth import TokenFileError, load_tokens
from gpuwarden.config import ConfigError
from gpuwarden.remediations.audit import result_text

if TYPE_CHECKING:  # the client loads only when an on-call verb runs: every command builds this parser
    from gpuwarden.remediations.client import Client

DONE_OK = ("succeeded", "dry_run")


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--agent", help="agent URL, e.g. https://gpu-17:9837 (default: the local agent)")
    p.add_argument("--token-file", help="file with the bearer token (default: the config's api.token_file)")
    p.add_argument("--config", help="agent config (for the default --agent and --token-file)")
    p.add_argument("--ca-file", help="CA bundle to verify an HTTPS agent")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds for each whole answer")
    p.add_argument("--json", action="store_true", help="print JSON")


def add_remediate(p: argparse.ArgumentParser) -> None:
    p.add_argument("playbook")
    p.add_argument("--reason", required=True, help="why (recorded in the audit log with your token's name)")
    p.add_argument("--dry-run", action="store_true", help="plan and record, change nothing")
    p.add_argument("--param", action="append", default=[], metavar="K=V", help="subject label, repeatable")
    p.add_argument("--target", help="the playbook's target (checked against the agent's config)")
    p.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the outcome (0: do not)")
    add_common(p)


def add_pause(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reason", required=True, help="why (recorded in the audit log with your token's name)")
    p.add_argument("--playbook", help="only this playbook (default: every playbook)")
    add_common(p)


def add_reset(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reason", required=True, help="why (recorded in the audit log with your token's name)")
    p.add_argument("--playbook", help="re-arm this exhausted playbook (default: leave storm mode)")
    add_common(p)


def client(args: argparse.Namespace) -> Client:
    from gpuwarden.remediations.client import Client

    cfg = configmod.load(args.config) if (args.agent is None or args.token_file is None) else None
    url = args.agent or local_url(cfg)  # type: ignore[arg-type]
    token_file = args.token_file or (cfg.api.token_file if cfg else None)
    if token_file is None:
        raise ConfigError(["--token-file: name the token file (the config has no api.token_file)"])
    try:
        token = next(iter(load_tokens(token_file).values()))
    except TokenFileError as err:
        raise ConfigError([f"--token-file: {err}"]) from None
    return Client(url, token, timeout=args.timeout, ca_file=args.ca_file)


def local_url(cfg: configmod.AgentConfig) -> str:
    host, port = parse_listen(cfg.agent.listen)
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    scheme = "https" if cfg.agent.tls.enabled else "http"
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"


def _call(args: argparse.Namespace, action: Any) -> int:
    from gpuwarden.remediations.client import ApiError

    try:
        return int(action(client(args)))
    except ApiError as err:
        print(f"gpuwarden: {err}", file=sys.stderr)
        return err.code


def remediate(args: argparse.Namespace) -> int:
    params: dict[str, str] = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError([f"--param {item}: must be KEY=VALUE"])
        params[key] = value

    def act(api: Client) -> int:
        queued = api.remediate(
            args.playbook, args.reason, dry_run=args.dry_run, params=params, target=args.target
        )
        run = queued["run"]
        if not args.json:
            kind = "dry run" if args.dry_run else "run"
            print(f"{kind} {run} queued: {queued['playbook']} on {queued['target']}")
        detail = _wait(api, run, args.wait)
        if args.json:
            print(json.dumps(detail or queued, indent=2, sort_keys=True))
        elif detail is None:
            print(f"still running after {args.wait:g}s: `gpuwarden run {run}` shows it")
        else:
            print_run(detail)
        return 0 if detail is None or detail.get("result") in DONE_OK else 1

    return _call(args, act)


def _wait(api: Client, run: str, seconds: float) -> dict[str, Any] | None:
    from gpuwarden.remediations.client import ApiError

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            detail = api.run(run)
        except ApiError as err:
            if err.status != 404:  # not in the audit log yet: the engine has not started it
                raise
        else:
            if detail.get("result"):
                return detail
        time.sleep(0.2)
    return None


def runs(args: argparse.Namespace) -> int:
    if args.audit_log:  # offline: this node's audit log, without the agent (remediation's own reader)
        from gpuwarden.remediations import cli as local

        args.run = None
        return local.cli(args)

    def act(api: Client) -> int:
        answer = api.runs(args.limit, args.playbook)
        if args.since is not None:
            answer["runs"] = [r for r in answer["runs"] if r.get("started", 0) >= time.time() - args.since]
        if args.json:
            print(json.dumps(answer, indent=2, sort_keys=True))
            return 0
        for playbook, reason in sorted(answer.get("paused", {}).items()):
            print(f"PAUSED {'every playbook' if playbook == '*' else playbook}: {reason}")
        rows = [
            [_when(r.get("started")), r["run"], r["playbook"], r.get("target", ""),
             result_text(r), r.get("actor") or "", r.get("detail") or r.get("reason") or ""]
            for r in answer.get("runs", [])
        ]  # fmt: skip
        print_table(["STARTED", "RUN", "PLAYBOOK", "TARGET", "RESULT", "ACTOR", "REASON"], rows)
        return 0

    return _call(args, act)


def run(args: argparse.Namespace) -> int:
    def act(api: Client) -> int:
        detail = api.run(args.id)
        if args.json:
            print(json.dumps(detail, indent=2, sort_keys=True))
        else:
            print_run(detail)
        return 0

    return _call(args, act)


def pause(args: argparse.Namespace) -> int:
    return _pause_or_resume(args, "pause")


def resume(args: argparse.Namespace) -> int:
    return _pause_or_resume(args, "resume")


def _pause_or_resume(args: argparse.Namespace, verb: str) -> int:
    def act(api: Client) -> int:
        answer = getattr(api, verb)(args.reason, args.playbook)
        if args.json:
            print(json.dumps(answer, indent=2, sort_keys=True))
            return 0
        what = "every playbook" if answer["playbook"] == "*" else answer["playbook"]
        print(f"{answer['status']} {what}")
        for playbook, reason in sorted(answer.get("paused", {}).items()):
            print(f"  still paused: {'every playbook' if playbook == '*' else playbook}: {reason}")
        return 0

    return _call(args, act)


def reset(args: argparse.Namespace) -> int:
    def act(api: Client) -> int:
        answer = api.reset(args.reason, args.playbook)
        if args.json:
            print(json.dumps(answer, indent=2, sort_keys=True))
            return 0
        what = "storm mode left" if answer["playbook"] == "*" else f"{answer['playbook']} re-armed"
        print(f"reset: {what}")
        if answer.get("storm"):
            print(f"  still in storm mode: {answer['storm']}")
        for playbook, reason in sorted(answer.get("exhausted", {}).items()):
            print(f"  still exhausted: {playbook}: {reason}")
        return 0

    return _call(args, act)


# -- output ------------------------------------------------------------------------------------------
def print_run(d: dict[str, Any]) -> None:
    print(f"run {d['run']}: {d['playbook']} on {d.get('target', '')}: {d.get('result') or 'running'}")
    print(f"  asked by {d.get('actor') or '-'} ({d.get('source') or '-'}): {d.get('reason') or '-'}")
    if d.get("detail"):
        print(f"  outcome: {d['detail']}")
    if d.get("repeats"):
        print(f"  then refused {d['repeats']} more time(s) the same way while the state held")
    plan = d.get("plan") or {}
    if plan.get("refusal"):
        print(f"  refused: {plan['refusal']}")
    steps = plan.get("steps") or []
    if steps:
        print("  plan:")
        rows = [[str(i), s.get("name", ""), "yes" if s.get("disruptive") else "", s.get("detail", "")]
                for i, s in enumerate(steps, 1)]  # fmt: skip
        print_table(["#", "STEP", "DISRUPTIVE", "DETAIL"], rows, indent="    ")


def print_table(header: list[str], rows: list[list[str]], indent: str = "") -> None:
    """Columns as wide as their content; the last column is cut to the terminal's width."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    room = shutil.get_terminal_size((120, 24)).columns - len(indent) - sum(w + 2 for w in widths[:-1])
    for row in [header, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(row[:-1], widths, strict=False)]
        last = str(row[-1]).replace("\n", " ")
        if len(last) > max(room, 20):
            last = last[: max(room, 20) - 1] + "…"
        print(indent + "  ".join([*cells, last]).rstrip())


def _when(ts: object) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(ts)))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "-"
