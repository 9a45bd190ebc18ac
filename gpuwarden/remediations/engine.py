"""The remediation engine: requests in, rails, plan, evidence, fleet lease, act, verify, audit.

`submit()` is the one entry point (health triggers, alerts, manual requests, a crashed process): it
answers at once and queues into a bounded queue (Robusta's TaskQueue rejects and counts when full). One
run per playbook and target at a time; a second request for a busy pair is rejected, not queued. A run
goes through the same code path with or without dry-run: the plan is recorded either way, and only the
acting part is skipped (Draino `--dry-run`, NVSentinel `dryRun`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from prometheus_client.metrics_core import Metric

from gpuwarden.deadline import DeadlineExceeded, run_with_deadline
from gpuwarden.fleet.budget import BudgetDenied, Lease
from gpuwarden.remediations import metrics
from gpuwarden.remediations.audit import AuditClosed, AuditLog
from gpuwarden.remediations.held import Streak, Streaks
from gpuwarden.remediations.rails import ALL, Rails
from gpuwarden.remediations.registry import PLAYBOOKS, FleetView, Playbook, PlaybookContext, Standing
from gpuwarden.remediations.request import Request, Submitted
from gpuwarden.remediations.section import RemediationSettings
from gpuwarden.remediations.settings import ExitTrigger, PlaybookSettings, ScheduleTrigger
from gpuwarden.remediations.targets import ProcessTarget, Target, build_target
from gpuwarden.remediations.triggers import Alert, AlertTriggers, HealthTriggers, TransitionLike

TICK_S = 0.2  # how often held health states and supervised processes are looked at


class Budget(Protocol):
    def acquire(self, playbook: str, timeout: float | None = None) -> Lease: ...


class Engine:
    def __init__(
        self,
        settings: RemediationSettings,
        *,
        health: Callable[[str], str | None] = lambda component: None,
        budget: Callable[[], Budget | None] = lambda: None,
        fleet: Callable[[], FleetView | None] = lambda: None,
        inventory: Callable[[], Mapping[str, str]] = lambda: {},
        log: logging.Logger | None = None,
    ) -> None:
        self.settings = settings
        self.log = log or logging.getLogger("gpuwarden.remediation")
        self.budget = budget
        self.health = health
        self.playbooks: dict[str, PlaybookSettings] = settings.enabled_playbooks()
        self.targets: dict[str, Target] = {n: build_target(n, t) for n, t in settings.targets.items()}
        self.instances: dict[str, Playbook] = {
            name: PLAYBOOKS[name].factory(
                s, PlaybookContext(self.targets[s.target], health, fleet=fleet, inventory=inventory)
            )
            for name, s in self.playbooks.items()
        }
        self.audit = AuditLog(settings.audit_log)
        self.rails = Rails(time.time(), settings.startup_grace_s)
        self.rails.replay(self.audit.recover())
        self.health_triggers = HealthTriggers(self.playbooks)
        self.alert_triggers = AlertTriggers(self.playbooks)
        self.metrics = metrics.EngineMetrics(self.audit_records())
        self._queue: queue.Queue[Request | None] = queue.Queue(maxsize=settings.queue_size)
        self._busy: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._next_schedule: dict[str, float] = {}
        self.streaks = Streaks()
        self.standing = Standing(settings.playbook)

    def audit_records(self) -> list[dict[str, Any]]:
        from gpuwarden.remediations.audit import read

        return list(read(self.audit.path))

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> Engine:
        for target in self.targets.values():
            if isinstance(target, ProcessTarget):
                target.start()  # the agent supervises it from now on
        for fn, name in ((self._consume, "remediation"), (self._tick, "remediation-tick")):
            thread = threading.Thread(target=fn, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, stop_targets: bool = False) -> None:
        self._stop.set()
        for key in self.streaks.open_keys():  # what was counted so far is written, not lost with the process
            self._end_streak(key)
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        if stop_targets:
            for target in self.targets.values():
                if isinstance(target, ProcessTarget):
                    target.stop()
        self.audit.close()

    # -- entry points -------------------------------------------------------------------------------
    def submit(self, request: Request) -> Submitted:
        """Queue a request; answers at once. Unknown or disabled playbooks, a full queue and a busy
        playbook/target pair are rejected with the reason."""
        settings = self.playbooks.get(request.playbook)
        if settings is None:
            return self._reject(request, f"playbook {request.playbook} is not enabled on this node")
        with self._lock:
            key = (request.playbook, settings.target)
            if key in self._busy:
                return self._reject(request, f"{request.playbook} already runs on {settings.target}")
            try:
                self._queue.put_nowait(request)
            except queue.Full:
                return self._reject(request, f"queue full ({self.settings.queue_size} waiting)")
            self._busy.add(key)
        return Submitted(True, request.run_id, "queued")

    def on_transition(self, transition: TransitionLike) -> None:
        """HealthStore subscriber: record only (the store's thread must not wait on us)."""
        self.health_triggers.on_transition(transition)

    def alert(self, alert: Alert) -> list[Submitted]:
        requests, why = self.alert_triggers.requests(alert)
        if not requests:
            return [Submitted(False, "", why)]
        submitted = [self.submit(r) for r in requests]
        if not any(s.accepted for s in submitted):
            self.alert_triggers.forget(alert)  # nothing queued (queue full, busy): let a retry in
        return submitted

    def pause(self, reason: str, actor: str, playbook: str = ALL) -> None:
        self._record("-", "pause", playbook, "-", reason=reason, actor=actor)

    def resume(self, actor: str, playbook: str = ALL, reason: str = "") -> None:
        self._record("-", "resume", playbook, "-", actor=actor, reason=reason)

    def reset(self, playbook: str, actor: str, reason: str = "") -> None:
        """Re-arm an exhausted playbook (a fresh attempt budget), or with `*` leave storm mode: an operator
        looked at what made the engine stop."""
        target = "-" if playbook == ALL else self.playbooks[playbook].target
        self._record("-", "reset", playbook, target, actor=actor, reason=reason)

    def collect(self) -> Iterator[Metric]:
        held = sum(1 for _ in [self.budget()] if _ is not None and getattr(_, "held", False))
        extra = [s for p in self.instances.values() for s in getattr(p, "samples", lambda: [])()]
        extra += self.standing.samples()  # also of playbooks that are not enabled (registry.Standing)
        return self.metrics.families(self.rails, list(self.playbooks), self._queue.qsize(), held, extra)

    # -- internals ----------------------------------------------------------------------------------
    def _reject(self, request: Request, reason: str) -> Submitted:
        self.metrics.rejected += 1
        self.log.warning("remediation request %s rejected: %s", request.playbook, reason)
        return Submitted(False, request.run_id, reason)

    def _record(self, run: str, step: str, playbook: str, target: str, **fields: Any) -> dict[str, Any]:
        record = self.audit.write(run, step, playbook, target, **fields)
        self.rails.observe(record)
        self.metrics.observe(record)
        return record

    def _end_streak(self, key: tuple[str, str]) -> None:
        streak = self.streaks.end(key)
        if streak is not None and streak.count:
            self._repeats(key[0], streak, ended=True)

    def _repeats(self, playbook: str, streak: Streak, ended: bool) -> None:
        """The requests of a held state that the same rail refused after `streak.run`, as one record."""
        self._record(
            streak.run, "repeats", playbook, streak.target, count=streak.count, rail=streak.rail,
            reason=streak.reason, first_ts=round(streak.first, 6), last_ts=round(streak.last, 6), ended=ended,
        )  # fmt: skip

    def _streaks_tick(self) -> None:
        for playbook, component in self.streaks.open_keys():
            if not self.health_triggers.holding(playbook, component):  # recovered: the hold is over
                self._end_streak((playbook, component))
        for (playbook, _), streak in self.streaks.checkpoints(time.time()):
            self._repeats(playbook, streak, ended=False)

    def _tick(self) -> None:
        while not self._stop.wait(TICK_S):
            try:
                self._streaks_tick()
            except AuditClosed:  # stop() closed the log between the wait and here
                return
            for request in self.health_triggers.due():
                self.submit(request)
            self._scheduled(time.monotonic())
            for name, settings in self.playbooks.items():
                target = self.targets[settings.target]
                if (
                    isinstance(target, ProcessTarget)
                    and target.crashed()
                    and any(isinstance(t, ExitTrigger) for t in settings.triggers)
                ):
                    code = target.proc.returncode if target.proc else None
                    target.expected_exit = True  # one request per exit
                    self.submit(
                        Request(name, "exit", f"supervisor:{target.name}", f"process exited ({code})")
                    )

    def _scheduled(self, now: float) -> None:
        """Ask playbooks with a schedule whether they have work; only a yes becomes a request (and a run
        in the audit log), so an idle schedule writes nothing."""
        for name, settings in self.playbooks.items():
            for trigger in settings.triggers:
                if not isinstance(trigger, ScheduleTrigger):
                    continue
                if now < self._next_schedule.setdefault(name, now + trigger.every_s):
                    continue
                self._next_schedule[name] = now + trigger.every_s
                request = Request(name, "schedule", "schedule", f"every {trigger.every_s:g}s")
                try:
                    check = self.instances[name].still_needed(request)
                except Exception:  # a playbook bug must not stop the tick (health, crashes)
                    self.log.exception("remediation %s: schedule check failed", name)
                    continue
                if check.ok:
                    self.submit(dataclasses.replace(request, reason=f"schedule: {check.reason}"))

    def _consume(self) -> None:
        while (request := self._queue.get()) is not None:
            settings = self.playbooks[request.playbook]
            try:
                self._run(request, settings)
            except AuditClosed:  # stopped mid-run: the next start closes the run as `interrupted`
                self.log.warning("remediation %s stopped mid-run (run %s)", request.playbook, request.run_id)
                return
            except Exception as err:  # a playbook bug must not kill the engine; the run still ends
                self.log.exception("remediation %s crashed", request.playbook)
                with contextlib.suppress(AuditClosed):
                    self._outcome(request, settings, "failed", f"engine error: {type(err).__name__}: {err}")
            finally:
                with self._lock:
                    self._busy.discard((request.playbook, settings.target))

    def _run(self, request: Request, settings: PlaybookSettings) -> None:
        run, name, target = request.run_id, request.playbook, settings.target
        started = time.monotonic()
        storm = self.rails.storming(self.settings.storm, time.time())
        if storm:
            self._record("-", "storm", ALL, "-", reason=storm)
            self.log.error("remediation storm mode: %s; acting on nothing until reset; escalate", storm)
        # Decide before writing anything: a held state refused again by the same rail is only counted.
        playbook = self.instances[name]
        refusal, allowed, crash = self._verdict(request, settings, playbook)
        held = (name, request.component) if request.source == "health" and request.component else None
        if held is not None:
            if refusal is not None and self.streaks.repeat(held, *refusal, time.time()):
                return
            self._end_streak(held)
        self._record(
            run, "trigger", name, target, source=request.source, actor=request.actor,
            reason=request.reason, component=request.component, labels=dict(request.labels),
        )  # fmt: skip
        if crash is not None:
            raise crash  # the playbook's re-check failed: the run ends `failed` after its trigger
        if refusal is not None:
            rail, reason = refusal
            self._record(run, "decision", name, target, allowed=False, rail=rail, reason=reason)
            if rail == "budget":
                self._record(run, "exhausted", name, target, reason=reason)
                self.log.error("remediation %s on %s exhausted: %s; escalate", name, target, reason)
            self._outcome(request, settings, "skipped", reason, started)
            if held is not None:
                self.streaks.start(held, run, target, rail, reason, time.time())
            return
        self._record(run, "decision", name, target, allowed=True, reason=allowed)
        plan = playbook.plan(request)
        self._record(run, "plan", name, target, **plan.to_json())
        if plan.refusal:
            self.log.error("remediation %s on %s refused: %s; escalate", name, target, plan.refusal)
            return self._outcome(request, settings, "refused", plan.refusal, started)
        if request.dry_run or settings.dry_run or self.settings.dry_run:
            return self._outcome(
                request, settings, "dry_run", "dry run: the plan above was not applied", started
            )
        ref = self.audit.write_evidence(run, {"request": request.__dict__, **playbook.evidence()})
        self._record(run, "evidence", name, target, ref=ref)
        lease = self._lease(request, settings) if plan.disruptive else None
        if lease is False:
            return self._outcome(request, settings, "denied", "no fleet budget lease", started)
        try:
            self._record(run, "attempt", name, target, disruptive=plan.disruptive)  # reserved; fsynced
            disrupted = False  # steps up to the first disruptive one prepare it: they need the lease too
            for step in plan.steps:
                needs_lease = step.disruptive or not disrupted
                if needs_lease and isinstance(lease, Lease) and lease.lost.is_set():
                    why = (
                        "fleet lease lost (ZooKeeper session suspended or lost): stopped before " + step.name
                    )
                    return self._outcome(request, settings, "failed", why, started)
                disrupted = disrupted or step.disruptive
                self._record(run, "action", name, target, name=step.name, status="started")
                try:
                    run_with_deadline(step.run, settings.rails.step_timeout_s, name=f"{name}.{step.name}")
                except Exception as err:  # DeadlineExceeded, TargetError, anything: the run failed
                    self._record(run, "action", name, target, name=step.name, status="failed", error=str(err))
                    return self._outcome(request, settings, "failed", f"{step.name}: {err}", started)
                self._record(run, "action", name, target, name=step.name, status="done")
            check = self._verify(playbook, settings)
            self._record(run, "verify", name, target, ok=check[0], reason=check[1])
            result = "succeeded" if check[0] else "failed"
            return self._outcome(request, settings, result, check[1], started)
        finally:
            if isinstance(lease, Lease):
                lease.release()

    def _verdict(
        self, request: Request, settings: PlaybookSettings, playbook: Playbook
    ) -> tuple[tuple[str, str] | None, str, Exception | None]:
        """(rail and reason of a refusal or None, why it may act, a crash of the playbook's re-check)."""
        decision = self.rails.check(request, settings.target, settings.rails, time.time())
        if not decision.ok:
            return (decision.rail, decision.reason), "", None
        try:
            needed, why = self._still_needed(request, playbook)
        except Exception as err:  # raised once the trigger is written, so the run has all its records
            return None, "", err
        return (None if needed else ("recheck", why)), why, None

    def _still_needed(self, request: Request, playbook: Playbook) -> tuple[bool, str]:
        """Re-check right before acting: a component that recovered meanwhile is left alone (draino#116)."""
        if request.component is not None:
            state = self.health(request.component)
            if state == "HEALTHY":
                return False, f"{request.component} recovered before acting"
        check = playbook.still_needed(request)
        return check.ok, check.reason

    def _verify(self, playbook: Playbook, settings: PlaybookSettings) -> tuple[bool, str]:
        try:
            check = run_with_deadline(playbook.verify, settings.rails.verify_timeout_s, name="verify")
        except DeadlineExceeded as err:
            return False, str(err)
        return check.ok, check.reason

    def _lease(self, request: Request, settings: PlaybookSettings) -> Lease | bool | None:
        budget = self.budget()
        run, name, target = request.run_id, request.playbook, settings.target
        if budget is None:
            self._record(
                run, "lease", name, target, granted=True, reason="no fleet configured: node acts alone"
            )
            return None
        try:
            lease = budget.acquire(name)
        except BudgetDenied as denied:
            if denied.fail_open:
                self._record(run, "lease", name, target, granted=False, fail_open=True, reason=str(denied))
                return None
            self._record(run, "lease", name, target, granted=False, reason=str(denied))
            return False
        self._record(run, "lease", name, target, granted=True, waited_s=round(lease.waited_seconds, 3))
        return lease

    def _outcome(
        self, request: Request, settings: PlaybookSettings, result: str, reason: str, started: float = 0.0
    ) -> None:
        duration = time.monotonic() - started if started else 0.0
        # The pair is free the moment its outcome can be read: a caller who sees the outcome (the API,
        # the audit log) and asks again must not get "already runs". Requests run one after another on
        # this thread, so the next one starts after this run returns, whatever is queued now.
        with self._lock:
            self._record(
                request.run_id, "outcome", request.playbook, settings.target, result=result, reason=reason,
                duration_s=round(duration, 3),
            )  # fmt: skip
            self._busy.discard((request.playbook, settings.target))
        log = self.log.info if result in ("succeeded", "dry_run", "skipped") else self.log.warning
        log(
            "remediation %s %s on %s: %s (run %s)",
            request.playbook,
            result,
            settings.target,
            reason,
            request.run_id,
        )


def health_lookup(results: Callable[[], list[Any]]) -> Callable[[str], str | None]:
    """A `health` callable for the engine from the store's `results()`."""

    def lookup(component: str) -> str | None:
        states: Mapping[str, str] = {r.component: str(r.state) for r in results()}
        return states.get(component)

    return lookup
