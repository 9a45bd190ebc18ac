"""`make demo` / `python -m gpuwarden.demo [--short] [--out DIR]`: the whole incident loop on one machine.

Brings up a 3-server ZooKeeper ensemble, Alertmanager and Prometheus (Debian's packages, loopback, free
ports) with the generated rules, and the agent with its playbooks, supervising the reference worker; runs
the scripted incident (scenario.py), prints the timeline as it happens, then the table of measured times;
writes DIR/timeline.json and DIR/timeline.png; stops everything it started, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
from pathlib import Path
from types import FrameType

from gpuwarden.demo import configs, report, scenario
from gpuwarden.demo.plot import draw
from gpuwarden.demo.services import ServiceError
from gpuwarden.demo.stack import Stack
from gpuwarden.demo.timeline import Timeline
from gpuwarden.demo.zookeeper import zookeeper_available

MARKER = ".gpuwarden-demo"  # only a directory the demo made is emptied on the next run


def prepare(out: Path) -> None:
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise ServiceError(f"{out} is not empty and was not made by the demo: choose another --out")
    shutil.rmtree(out, ignore_errors=True)
    for sub in ("logs", "audit", "model", "prometheus/data", "alertmanager/data"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("written by `python -m gpuwarden.demo`; emptied on its next run\n")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gpuwarden.demo", description=__doc__.splitlines()[0])
    p.add_argument("--short", action="store_true", help="the CI version: shorter waits and alert windows")
    p.add_argument("--out", type=Path, default=Path(".demo"), help="where logs, timeline.json/png go")
    args = p.parse_args(argv)
    repo = Path(__file__).resolve().parents[2]
    if not (repo / configs.REPLAY_FILE).exists():
        print(f"gpuwarden demo: needs a source checkout ({configs.REPLAY_FILE} not found)", file=sys.stderr)
        return 1
    if not zookeeper_available():
        print("gpuwarden demo: ZooKeeper is not installed (`make deps-debian`)", file=sys.stderr)
        return 1
    out = args.out.resolve()
    try:
        prepare(out)
    except ServiceError as err:
        print(f"gpuwarden demo: {err}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, _interrupt)
    # Ctrl-C must stop everything even when the demo was started with SIGINT ignored (a background job of a
    # non-interactive shell inherits SIG_IGN, and Python then installs no KeyboardInterrupt handler).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    pace = configs.SHORT if args.short else configs.FULL
    timeline = Timeline()
    stack = Stack(out, repo, pace, timeline)
    code = 1
    try:
        banner(pace, args.short)
        stack.up()
        assert stack.ensemble is not None
        drill = scenario.Drill(
            timeline, stack.watchers, stack.ensemble, pace, stack.urls["worker"], configs.WORKER_ADMIN_TOKEN,
            out / "scale-signal.json",
        )  # fmt: skip
        drill.run()
        stack.watchers.close()  # the table comes after the last line of the timeline
        code = finish(timeline, out, pace, args.short)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping everything the demo started", flush=True)
        code = 130
    except ServiceError as err:
        print(f"gpuwarden demo: {err}", file=sys.stderr)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave processes behind
        stack.down()
        print(f"stopped: agent, worker, Prometheus, Alertmanager, ZooKeeper x3; logs in {out / 'logs'}")
    return code


def banner(pace: configs.Pace, short: bool) -> None:
    print("gpuwarden demo: the incident loop on one machine" + (" (short version)" if short else ""))
    print(f"  GPU: {configs.REPLAY_LABEL} ({configs.REPLAY_FILE})")
    print("  demo settings (shortened so the drill takes minutes, not hours):")
    for line in configs.changes(pace):
        print(f"    - {line}")
    print("\n== Setup")


def finish(timeline: Timeline, out: Path, pace: configs.Pace, short: bool) -> int:
    rows = report.table(timeline, scenario.INCIDENTS)
    print("\n== Detection and recovery, measured in this run (seconds after each fault)\n")
    print(report.render(rows))
    meta = {
        "short": short,
        "gpu": {"source": "replay", "label": configs.REPLAY_LABEL, "file": configs.REPLAY_FILE},
        "demo_settings": configs.changes(pace),
    }
    timeline.write_json(out / "timeline.json", meta, rows)
    slo = configs.mixin(pace).latency_slo_seconds
    title = "gpuwarden demo: OOM, hang, latency spike, ZooKeeper quorum loss  |  GPU: " + configs.REPLAY_LABEL
    draw(out / "timeline.png", timeline.samples, timeline.events, slo, title)
    print(f"\ntimeline: {out / 'timeline.json'}\npicture:  {out / 'timeline.png'}")
    timeouts = [e for e in timeline.events if e.step == "timeout"]
    return 1 if timeouts else 0


if __name__ == "__main__":
    sys.exit(main())
