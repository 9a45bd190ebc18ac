"""The ensemble verdict: OK, DEGRADED, NO_QUORUM, SPLIT or UNKNOWN, from every server's status.

The algorithm follows the ZooKeeper admin guide's quorum rule (a majority of the *configured* voters,
floor(N/2)+1, must follow one leader) and judges against the ensemble from config, never only against the
servers that answer. The leader's `zk_synced_followers` counts the followers that are in sync
(`zk_learners`/`zk_followers` also count observers); where the leader also reports
`zk_synced_non_voting_followers` (3.5+, during a reconfig), those do not vote and are taken off, so
leader + synced voting followers is the live quorum. Where `mntr` is refused (ZooKeeper's default
whitelist since 3.5.3 allows only `srvr`), the voters whose `srvr` says `Mode: follower` are counted
instead: a server reports follower only while it follows an elected leader.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from gpuwarden.collectors.zookeeper.parse import SERVING_MODES, Mode, ServerStatus


class Verdict(StrEnum):
    OK = "OK"
    DEGRADED = "DEGRADED"  # quorum held, a member missing or unsynced
    NO_QUORUM = "NO_QUORUM"
    SPLIT = "SPLIT"  # more than one server claims to lead
    UNKNOWN = "UNKNOWN"  # the 4lw whitelist hides what we need, or a server answers nonsense: not a zero


# `gpuwarden zookeeper check` exit codes: 0 OK, 1 DEGRADED, 2 NO_QUORUM/SPLIT, 3 UNKNOWN.
EXIT_CODES = {Verdict.OK: 0, Verdict.DEGRADED: 1, Verdict.NO_QUORUM: 2, Verdict.SPLIT: 2, Verdict.UNKNOWN: 3}


@dataclass(frozen=True)
class EnsembleVerdict:
    verdict: Verdict
    reasons: tuple[str, ...]
    voters: int
    leader: str | None = None
    synced_voters: int | None = None  # leader + synced voting followers; None when unknown
    tolerable_failures: int | None = None  # voters that may still fail before quorum is lost

    @property
    def quorum_ok(self) -> bool | None:
        if self.verdict is Verdict.UNKNOWN:
            return None
        return self.verdict in (Verdict.OK, Verdict.DEGRADED)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]


def majority(voters: int) -> int:
    return voters // 2 + 1


def judge(
    voters: Sequence[str], observers: Sequence[str], status: Mapping[str, ServerStatus]
) -> EnsembleVerdict:
    """Verdict for the configured ensemble; `status` holds one probe result per configured server."""
    n = len(voters)
    need = majority(n)
    every = [*voters, *observers]
    blocked = [a for a in every if status[a].mode is Mode.WHITELIST_BLOCKED]
    if blocked:
        return EnsembleVerdict(
            Verdict.UNKNOWN,
            tuple(f"{a}: {status[a].detail or 'whitelist blocks the probe'}" for a in blocked)
            + ("add `4lw.commands.whitelist=srvr, mntr, ruok, isro` to zoo.cfg (configuration error)",),
            n,
        )
    broken = [a for a in every if status[a].mode is Mode.BAD_REPLY]
    if broken:
        # What such a server says about the quorum cannot be believed, so nothing can be concluded.
        return EnsembleVerdict(
            Verdict.UNKNOWN,
            tuple(f"{a}: answers that are not ZooKeeper's ({status[a].detail})" for a in broken),
            n,
        )
    leaders = [a for a in every if status[a].mode is Mode.LEADER]
    if n == 1 and status[voters[0]].mode is Mode.STANDALONE:
        leaders = [voters[0]]  # a one-server ensemble: standalone is its leader, and it tolerates nothing
    if len(leaders) > 1:
        return EnsembleVerdict(
            Verdict.SPLIT, (f"{len(leaders)} servers claim to lead: {', '.join(leaders)}",), n
        )
    problems = [describe(status[a]) for a in every if status[a].mode not in SERVING_MODES]
    if n > 1:
        problems += [
            f"{a}: runs standalone, outside the ensemble" for a in every if status[a].mode is Mode.STANDALONE
        ]
    if not leaders:
        return EnsembleVerdict(
            Verdict.NO_QUORUM, ("no leader among the configured servers", *problems), n, tolerable_failures=0
        )
    leader = leaders[0]
    if leader in observers:
        problems.append(f"{leader}: configured as an observer but leads")
    basis = ""
    if n == 1:
        synced = 1
    elif status[leader].mntr_refused or status[leader].stat("zk_synced_followers") is None:
        # No count from the leader: mntr is not whitelisted, or the leader answers mntr without the follower
        # lines (seen while it steps down after losing its followers). Count the voters that say they follow.
        synced = 1 + len([a for a in voters if status[a].mode is Mode.FOLLOWER])
        why = (
            "mntr is not in 4lw.commands.whitelist"
            if status[leader].mntr_refused
            else "no zk_synced_followers"
        )
        basis = f" (from srvr: {why})"
    else:
        followers = status[leader].stat("zk_synced_followers") or 0
        non_voting = status[leader].stat("zk_synced_non_voting_followers") or 0
        synced = 1 + int(followers - non_voting)
    tolerable = max(synced - need, 0)
    if synced < need:
        return EnsembleVerdict(
            Verdict.NO_QUORUM,
            (f"{synced} of {n} voters in sync with leader {leader}{basis}; a quorum needs {need}", *problems),
            n, leader, synced, 0,
        )  # fmt: skip
    if synced < n:
        problems.insert(0, f"{synced} of {n} voters in sync with leader {leader}{basis}")
    pending = status[leader].stat("zk_pending_syncs") or 0
    if pending > 0:
        problems.append(f"{leader}: {pending:g} follower syncs pending")
    for a in every:
        state = status[a].peer_state
        if status[a].mode is Mode.FOLLOWER and state and not state.endswith("broadcast"):
            problems.append(f"{a}: follower is {state}")
    verdict = Verdict.DEGRADED if problems else Verdict.OK
    reasons = problems or [
        f"leader {leader}, {synced} of {n} voters in sync{basis}, tolerates {tolerable} failure(s)"
    ]
    return EnsembleVerdict(verdict, tuple(reasons), n, leader, synced, tolerable)


def describe(s: ServerStatus) -> str:
    what = {
        Mode.READ_ONLY: "read-only (cut off from the quorum)",
        Mode.NOT_SERVING: "not serving (no quorum or electing)",
        Mode.UNREACHABLE: "unreachable",
        Mode.TIMEOUT: "timed out",
    }.get(s.mode, s.mode.value)
    if s.ruok and s.mode in (Mode.READ_ONLY, Mode.NOT_SERVING):
        what += ", although it answers ruok=imok"
    return f"{s.address}: {what}" + (f" ({s.detail})" if s.detail and s.mode is not Mode.READ_ONLY else "")
