"""The safety rails: may this playbook act on this target now? One answer, naming the rail that decided.

Their state is rebuilt from the audit log (`replay`) and kept current from the records the engine writes
(`observe`), so a restarted agent keeps its attempt budget, back-off and exhausted playbooks: malformed
or lost state must never reset a safety counter (NVSentinel ADR-056). In the order checked:

- paused       an operator paused this playbook (or all) with a reason (NHC `pauseRequests`);
- storm        `storm.max_runs` disruptive runs of all playbooks within `storm.window_s`: the engine acts on
               nothing until an operator resets `*` (NHC `maxUnhealthy`: a cause bigger than one playbook);
- exhausted    terminal: the attempt budget ran out; only `reset` re-arms it (Monit `unmonitor`);
- startup      the agent itself started less than `remediation.startup_grace_s` ago (it knows too little);
- grace        the engine (re)started the target less than `grace_s` ago (supervisord `startsecs`);
- flapping     the trigger entered its bad state `flap_max` times within `flap_window_s` (Monit);
- cooldown     the last run succeeded less than `cooldown_s` ago;
- backoff      the last run failed: wait `backoff_initial_s` doubling per failure up to `backoff_max_s`,
               from the initial value again once the target stayed quiet `backoff_reset_s` (systemd#43813);
- budget       `max_attempts` attempts within `window_s` already: becomes `exhausted` (systemd StartLimit).
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from gpuwarden.remediations.request import Request
from gpuwarden.remediations.settings import RailsSettings, StormSettings

ALL = "*"  # the playbook name of an engine-wide pause


@dataclass(frozen=True)
class Decision:
    ok: bool
    rail: str  # "" when ok
    reason: str


@dataclass
class History:
    attempts: deque[float] = field(default_factory=deque)
    last_end: float = 0.0
    last_result: str | None = None
    failures: list[float] = field(default_factory=list)  # end times of the consecutive failed runs
    exhausted: str | None = None  # the reason, while terminal


class Rails:
    def __init__(self, started_at: float, startup_grace_s: float) -> None:
        self.started_at = started_at
        self.startup_grace_s = startup_grace_s
        self.histories: dict[tuple[str, str], History] = defaultdict(History)
        self.paused: dict[str, str] = {}
        self.paused_at: dict[str, float] = {}  # when the pause in force was asked for (its age pages)
        self.target_started: dict[str, float] = {}
        self._attempted: set[str] = set()  # runs that reserved an attempt
        self.disruptive: deque[float] = deque()  # attempt times of disruptive runs, all playbooks
        self.storm: str | None = None  # the reason, while the engine is in storm mode

    def replay(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            self.observe(record)

    def observe(self, r: dict[str, Any]) -> None:
        step, key = r["step"], (r["playbook"], r["target"])
        if step == "attempt":
            self.histories[key].attempts.append(r["ts"])
            self._attempted.add(r["run"])
            if r.get("disruptive", True):  # records before the flag existed were all disruptive
                self.disruptive.append(r["ts"])
        elif step == "storm":
            self.storm = r.get("reason", "storm")
        elif step == "reset" and r["playbook"] == ALL:
            self.storm = None
            self.disruptive.clear()
        elif step == "action" and r.get("name") == "start" and r.get("status") == "done":
            self.target_started[r["target"]] = r["ts"]
        elif step == "outcome" and r["run"] in self._attempted:
            h = self.histories[key]
            h.last_end, h.last_result = r["ts"], r["result"]
            h.failures = [] if r["result"] == "succeeded" else [*h.failures, r["ts"]]
        elif step == "exhausted":
            self.histories[key].exhausted = r.get("reason", "attempt budget exhausted")
        elif step == "reset":
            self.histories[key] = History()
        elif step == "pause":
            self.paused[r["playbook"]] = r.get("reason", "")
            self.paused_at[r["playbook"]] = r["ts"]
        elif step == "resume":
            self.paused.pop(r["playbook"], None)
            self.paused_at.pop(r["playbook"], None)

    def storming(self, storm: StormSettings, now: float) -> str | None:
        """Why the engine enters storm mode now (None: not a storm). Latches through a `storm` record."""
        while self.disruptive and self.disruptive[0] <= now - storm.window_s:
            self.disruptive.popleft()
        if self.storm is None and len(self.disruptive) >= storm.max_runs:
            return f"{len(self.disruptive)} disruptive runs within {storm.window_s:g}s on this node"
        return None

    def check(self, request: Request, target: str, rails: RailsSettings, now: float) -> Decision:
        h = self.histories[(request.playbook, target)]
        for name in (ALL, request.playbook):
            if name in self.paused:
                return Decision(False, "paused", f"paused: {self.paused[name]}")
        if self.storm:
            return Decision(False, "storm", f"storm mode ({self.storm}); `reset '*'` re-arms the engine")
        if h.exhausted:
            return Decision(False, "exhausted", f"exhausted ({h.exhausted}); `reset` re-arms it")
        if now < self.started_at + self.startup_grace_s:
            left = self.started_at + self.startup_grace_s - now
            return Decision(
                False, "startup", f"agent started {now - self.started_at:.0f}s ago ({left:.0f}s left)"
            )
        started = self.target_started.get(target, 0.0)
        if now < started + rails.grace_s:
            return Decision(False, "grace", f"{target} was (re)started {now - started:.0f}s ago")
        if request.flaps >= rails.flap_max:
            return Decision(
                False, "flapping", f"entered its bad state {request.flaps}x in {rails.flap_window_s:g}s"
            )
        if h.last_result == "succeeded" and now < h.last_end + rails.cooldown_s:
            return Decision(False, "cooldown", f"last run succeeded {now - h.last_end:.0f}s ago")
        streak = _streak(h.failures, now, rails.backoff_reset_s)
        if streak:
            wait = min(rails.backoff_initial_s * 2 ** (streak - 1), rails.backoff_max_s)
            if now < h.last_end + wait:
                return Decision(False, "backoff", f"{streak} failed run(s) in a row: waiting {wait:g}s")
        while h.attempts and h.attempts[0] <= now - rails.window_s:
            h.attempts.popleft()
        if len(h.attempts) >= rails.max_attempts:
            why = f"{len(h.attempts)} attempts within {rails.window_s:g}s"
            return Decision(False, "budget", why)
        return Decision(True, "", "all rails passed")


def _streak(failures: list[float], now: float, reset_s: float) -> int:
    """Failed runs in a row, counting back from `now` until a quiet gap of `reset_s` (then the back-off
    starts from its initial value again: systemd's RestartSteps never resets, systemd#43813)."""
    streak, later = 0, now
    for end in reversed(failures):
        if later - end >= reset_s:
            break
        streak, later = streak + 1, end
    return streak
