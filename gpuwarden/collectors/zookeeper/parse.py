"""Pure parsing of ZooKeeper four-letter-word replies and the classification of one server.

Sources: the ZooKeeper administrator's guide ("The Four Letter Words"); ZOOKEEPER-3117, which renamed
`zk_followers` to `zk_learners` in 3.6 (older servers and tools still use the old name); apache/zookeeper
Commands.java (`mntr`: `synced_followers` counts every forwarding follower, voting or not, and
`synced_non_voting_followers` the non-voting ones, 3.5+); the replies of a real 3.8.0 ensemble captured
under tests/fixtures/zookeeper/ and of 3.4-3.9 servers in their documentation and issues
(tests/fixtures/zookeeper/versions/).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from enum import StrEnum

# A server answers this to every command it refuses (4lw.commands.whitelist, default `srvr` since 3.5.3).
WHITELIST_MARK = "is not executed because it is not in the whitelist"


class Mode(StrEnum):
    """What one server is, as the checker sees it. Values are the `mode` label of the metrics."""

    LEADER = "leader"
    FOLLOWER = "follower"
    OBSERVER = "observer"
    STANDALONE = "standalone"
    READ_ONLY = "read_only"
    NOT_SERVING = "not_serving"
    WHITELIST_BLOCKED = "whitelist_blocked"
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    # Not what the 4lw documents: a field the checker reads is not a number, or the reply is too long.
    BAD_REPLY = "bad_reply"


SERVING_MODES = frozenset({Mode.LEADER, Mode.FOLLOWER, Mode.OBSERVER, Mode.STANDALONE})

# mntr fields the checker judges or exports: `NaN` or `inf` in one of them is a broken (or hostile)
# server, never a value to compare or to export.
NUMERIC_FIELDS = (
    "zk_synced_followers",
    "zk_learners",
    "zk_followers",
    "zk_pending_syncs",
    "zk_avg_latency",
    "zk_max_latency",
    "zk_min_latency",
    "zk_outstanding_requests",
    "zk_znode_count",
    "zk_watch_count",
    "zk_num_alive_connections",
)


@dataclass(frozen=True)
class Reply:
    """One 4lw exchange: the text read to EOF, or why there is none."""

    text: str = ""
    error: Mode | None = None  # UNREACHABLE or TIMEOUT when the exchange failed
    detail: str = ""  # the socket error, for the reason line

    @property
    def blocked(self) -> bool:
        return WHITELIST_MARK in self.text


@dataclass(frozen=True)
class ServerStatus:
    address: str
    mode: Mode
    stats: dict[str, float] = field(default_factory=dict)  # numeric mntr fields, `zk_` kept
    peer_state: str = ""  # mntr zk_peer_state, e.g. "following - broadcast"
    ruok: bool | None = None  # None: not asked or refused by the whitelist
    detail: str = ""
    mntr_refused: bool = False  # the mode came from srvr alone (4lw.commands.whitelist lacks mntr)
    probe_seconds: float = 0.0

    def stat(self, *names: str) -> float | None:
        """The first of `names` that the server reported (for renamed fields)."""
        for name in names:
            if name in self.stats:
                return self.stats[name]
        return None


def parse_mntr(text: str) -> tuple[dict[str, float], dict[str, str]]:
    """`mntr` (tab-separated `zk_key value` lines) → (finite numeric fields, other fields)."""
    numbers: dict[str, float] = {}
    strings: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("\t")
        if not sep or not key.startswith("zk_"):
            continue
        value = value.strip()
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if math.isfinite(number):
            numbers[key] = number
        else:
            strings[key] = value
    return numbers, strings


def parse_srvr(text: str) -> dict[str, str]:
    """`srvr` (`Key: value` lines) → {key: value}; `Latency min/avg/max` stays one string."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            out[key.strip()] = value.strip()
    return out


_MODE_WORDS = {
    "leader": Mode.LEADER,
    "follower": Mode.FOLLOWER,
    "observer": Mode.OBSERVER,
    "standalone": Mode.STANDALONE,
    "read-only": Mode.READ_ONLY,
    "read_only": Mode.READ_ONLY,
}


def mode_word(word: str) -> Mode | None:
    return _MODE_WORDS.get(word.strip().lower())


def _srvr_latency(fields: dict[str, str]) -> dict[str, float]:
    """`Latency min/avg/max: 0/0.5/3` → zk_min/avg/max_latency, so srvr alone still gives latency."""
    m = re.match(r"([\d.]+)/([\d.]+)/([\d.]+)", fields.get("Latency min/avg/max", ""))
    if not m:
        return {}
    return {"zk_min_latency": float(m[1]), "zk_avg_latency": float(m[2]), "zk_max_latency": float(m[3])}


def classify(address: str, ruok: Reply, srvr: Reply, mntr: Reply, isro: Reply) -> ServerStatus:
    """Decide one server's mode from its four replies.

    `ruok` only proves the process is alive ("does not necessarily indicate that the server has joined
    the quorum", admin guide), so it never decides the mode. `srvr` is the one command ZooKeeper's
    default whitelist allows (3.5.3+), and its `Mode:` line decides the mode when `mntr` is refused; the
    server is WHITELIST_BLOCKED only when neither answers: treating it as down, or its missing fields as
    zero, would hide a config error.
    """
    alive = ruok.text.strip() == "imok" if ruok.text and not ruok.blocked else None
    for reply in (ruok, srvr, mntr):
        if reply.error is not None and not reply.text:
            return ServerStatus(address, reply.error, ruok=alive, detail=reply.detail)
    fields = parse_srvr(srvr.text) if not srvr.blocked else {}
    if mntr.blocked:
        mode = mode_word(fields.get("Mode", ""))
        if isro.text.strip() == "ro":
            mode = Mode.READ_ONLY
        if mode is None and not srvr.blocked and srvr.text:
            mode = Mode.NOT_SERVING  # srvr answered "not currently serving requests"
        if mode is None:
            return ServerStatus(
                address,
                Mode.WHITELIST_BLOCKED,
                ruok=alive,
                detail="srvr and mntr are not in 4lw.commands.whitelist",
            )
        return ServerStatus(address, mode, _srvr_latency(fields), ruok=alive, mntr_refused=True)
    numbers, strings = parse_mntr(mntr.text)
    broken = [key for key in NUMERIC_FIELDS if key in strings]
    if broken:
        value = strings[broken[0]][:20]
        detail = f"mntr {broken[0]} is {value!r}, not a number"
        return ServerStatus(address, Mode.BAD_REPLY, ruok=alive, detail=detail)
    if not numbers and fields:
        numbers = _srvr_latency(fields)
    mode = mode_word(strings.get("zk_server_state", "")) or mode_word(fields.get("Mode", ""))
    if isro.text.strip() == "ro":
        mode = Mode.READ_ONLY  # the server serves reads only because it lost the quorum
    if mode is None:
        # "not currently serving requests" (LOOKING, or a follower without a leader), or a reply we
        # cannot read: either way the server does not serve, whatever ruok says.
        mode = Mode.NOT_SERVING
    return ServerStatus(address, mode, numbers, strings.get("zk_peer_state", ""), alive)
