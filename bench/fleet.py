"""Fleet simulation on a real 3-node ZooKeeper ensemble (Debian's package, loopback).

Part 1, a simulated incident: `--agents` fleet clients (each its own kazoo session, spread over
`--procs` processes) register, then all ask at once for the remediation budget of `--budget` leases,
hold each lease for `--hold` seconds, and release it. Measured from one run, peer first then ours:
- peer: kazoo's stock Semaphore recipe (what an agent would use without gpuwarden);
- ours: `FleetBudget.acquire()` (the same recipe plus the policy check, the fail-closed deadline and
  the worker thread). Printed: the maximum number of concurrent holders ever observed (from every
  holder's own hold interval, and from a ZooKeeper watch on the lease pool), acquisition latency
  p50/p99, and the ratio ours/peer.

Part 2, quorum loss detection: the quorum checker probes every `--interval` seconds (0.5 s by default;
the target is NO_QUORUM within 1 s); one server is killed (DEGRADED), then the second one (SIGKILL).
Printed per trial: time from the second kill to the checker's first NO_QUORUM verdict, against the peer
`echo srvr | nc <survivor> | grep Mode` polled at the same interval (what on-call runs today), and `ruok`
on the survivor, which never notices.

Run: `python bench/fleet.py` (about 1-2 minutes on 2 cores). Results: bench/results/fleet.txt.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kazoo.client import KazooClient  # noqa: E402

from gpuwarden.collectors.zookeeper.collector import check  # noqa: E402
from gpuwarden.collectors.zookeeper.verdict import Verdict  # noqa: E402
from gpuwarden.fleet import BudgetSettings, FleetBudget, FleetClient, FleetSettings, Registration  # noqa: E402
from tests.integration.zk_ensemble import Ensemble, four_letter  # noqa: E402

CLUSTER = "bench"
PEER_PATH = "/bench-peer/budget"


# ---------------------------------------------------------------- part 1: contention (child processes)


def agents_process(
    index: int, count: int, hosts: str, budget: int, hold: float, ready: Any, go: Any, results: Any
) -> None:
    """`count` agents, each with its own kazoo session; runs the peer phase then ours on signal."""
    logging.getLogger("kazoo").setLevel(logging.ERROR)
    settings = FleetSettings(
        enabled=True,
        hosts=hosts.split(","),
        cluster=CLUSTER,
        session_timeout=10,
        connect_timeout=30,
        budget=BudgetSettings(max_concurrent=budget, acquire_timeout=120),
    )
    clients = [FleetClient(settings, node=f"p{index}-agent{i:03d}").start() for i in range(count)]
    for c in clients:
        Registration(c, {"version": "bench", "health": "UNHEALTHY"}).start()
    ready.put(index)

    def peer(c: FleetClient) -> Callable[[], Callable[[], None]]:
        def acquire() -> Callable[[], None]:
            sem = c.zk.Semaphore(PEER_PATH, c.node, max_leases=budget)
            sem.acquire(timeout=120)
            return sem.release  # type: ignore[no-any-return]

        return acquire

    def ours(c: FleetClient) -> Callable[[], Callable[[], None]]:
        b = FleetBudget(c, settings.budget)

        def acquire() -> Callable[[], None]:
            return b.acquire("restart_worker").release

        return acquire

    for phase, make in (("peer", peer), ("ours", ours)):
        go[phase].wait()
        records: list[tuple[float, float, float]] = []
        lock = threading.Lock()

        def agent(
            acquire: Callable[[], Callable[[], None]],
            records: list[tuple[float, float, float]] = records,
            lock: threading.Lock = lock,
        ) -> None:
            asked = time.monotonic()  # CLOCK_MONOTONIC is system-wide on Linux: comparable across processes
            release = acquire()
            got = time.monotonic()
            time.sleep(hold)  # the remediation
            done = time.monotonic()
            release()
            with lock:
                records.append((asked, got, done))

        threads = [threading.Thread(target=agent, args=(make(c),)) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        results.put((phase, records))
    for c in clients:
        c.stop()


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    current = peak = 0
    for _, step in events:  # at equal times -1 sorts first: a release before the next grant
        current += step
        peak = max(peak, current)
    return peak


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def contention(ens: Ensemble, args: argparse.Namespace, out: Callable[[str], None]) -> None:
    ctx = mp.get_context("spawn")
    ready, results = ctx.Queue(), ctx.Queue()
    go = {"peer": ctx.Event(), "ours": ctx.Event()}
    per = [args.agents // args.procs + (i < args.agents % args.procs) for i in range(args.procs)]
    procs = [
        ctx.Process(target=agents_process, args=(i, n, ens.hosts, args.budget, args.hold, ready, go, results))
        for i, n in enumerate(per)
    ]
    started = time.monotonic()
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    watcher = KazooClient(hosts=ens.hosts)
    watcher.start()
    out(
        f"{args.agents} agents in {args.procs} processes, each its own ZooKeeper session, registered in "
        f"{time.monotonic() - started:.1f}s; budget {args.budget}, lease held {args.hold * 1000:.0f} ms"
    )
    children = watcher.get_children(f"/gpuwarden/{CLUSTER}/agents")
    out(f"registered agents seen in ZooKeeper: {len(children)}")

    summary: dict[str, tuple[float, float]] = {}
    for phase, path in (("peer", PEER_PATH), ("ours", f"/gpuwarden/{CLUSTER}/budget")):
        watched = [0]
        watcher.ensure_path(path)

        @watcher.ChildrenWatch(path)  # type: ignore[misc]
        def count(kids: list[str], watched: list[int] = watched) -> None:
            watched[0] = max(watched[0], len(kids))

        t0 = time.monotonic()
        go[phase].set()
        records: list[tuple[float, float, float]] = []
        for _ in procs:
            _, recs = results.get(timeout=300)
            records += recs
        wall = time.monotonic() - t0
        latency = [got - asked for asked, got, _ in records]
        peak = max_overlap([(got, done) for _, got, done in records])
        name = "kazoo Semaphore (peer)" if phase == "peer" else "gpuwarden FleetBudget (ours)"
        out(
            f"{name}: {len(records)} leases in {wall:.1f}s; max concurrent holders {peak} (hold intervals), "
            f"{watched[0]} (lease-pool watch); acquisition latency p50 {pct(latency, 50):.3f}s "
            f"p99 {pct(latency, 99):.3f}s max {max(latency):.3f}s"
        )
        assert peak <= args.budget and watched[0] <= args.budget, "budget exceeded"
        summary[phase] = (pct(latency, 50), pct(latency, 99))
    p50 = summary["ours"][0] / summary["peer"][0]
    p99 = summary["ours"][1] / summary["peer"][1]
    out(f"ratio ours/peer: p50 {p50:.2f}x, p99 {p99:.2f}x")
    watcher.stop()
    watcher.close()
    for p in procs:
        p.join(60)


# ---------------------------------------------------------------- part 2: quorum loss detection


class Poller(threading.Thread):
    """Runs `probe` every `interval` seconds (fixed rate) and records (finish time, result)."""

    def __init__(self, probe: Callable[[], object], interval: float) -> None:
        super().__init__(daemon=True)
        self.probe, self.interval = probe, interval
        self.records: list[tuple[float, object]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        tick = time.monotonic()
        while not self.stopped.is_set():
            result = self.probe()
            self.records.append((time.monotonic(), result))
            tick += self.interval
            self.stopped.wait(max(0.0, tick - time.monotonic()))

    def first_after(self, since: float, wanted: Callable[[object], bool]) -> float | None:
        for when, result in self.records:
            if when > since and wanted(result):
                return when - since
        return None


def seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.3f}s"


def detection(ens: Ensemble, args: argparse.Namespace, out: Callable[[str], None]) -> None:
    ours_s, peer_s = [], []
    for trial in range(args.trials):
        leader = ens.wait_serving(60)
        first = leader if trial % 2 == 0 else ens.followers()[0]
        ens.kill(first)
        new_leader = ens.wait_serving(60, voters=2)
        follower = next(m for m in ens.members if m.proc is not None and m is not new_leader)
        # Alternate: kill the follower (the leader is left alone) or the leader (a follower is left).
        second, survivor = (follower, new_leader) if trial % 2 == 0 else (new_leader, follower)

        def ours() -> object:
            return check(ens.addresses, [], 1.0)[0].verdict

        def peer(port: int = survivor.client_port) -> object:
            return any(line.startswith("Mode: ") for line in four_letter(port, "srvr").splitlines())

        def ruok(port: int = survivor.client_port) -> object:
            return four_letter(port, "ruok")

        pollers = [Poller(ours, args.interval), Poller(peer, args.interval), Poller(ruok, args.interval)]
        for p in pollers:
            p.start()
        time.sleep(args.interval * (1.5 + (trial * 0.37) % 1))  # a different phase each trial
        killed = ens.kill(second)
        time.sleep(3.0)
        for p in pollers:
            p.stopped.set()
            p.join()
        ours_t = pollers[0].first_after(killed, lambda v: v == Verdict.NO_QUORUM)
        peer_t = pollers[1].first_after(killed, lambda up: up is False)
        said = {r for t, r in pollers[2].records if t > killed}
        role = "leader" if second is new_leader else "follower"
        out(
            f"trial {trial + 1}: 2nd server killed: the {role}; checker NO_QUORUM after {seconds(ours_t)}; "
            f"srvr|grep Mode on the survivor after {seconds(peer_t)}; survivor's ruok said {sorted(said)}"
        )
        if ours_t is not None:
            ours_s.append(ours_t)
        if peer_t is not None:
            peer_s.append(peer_t)
        for m in ens.members:
            ens.run(m)
    if ours_s and peer_s:
        ours_m, peer_m = statistics.median(ours_s), statistics.median(peer_s)
        out(
            f"NO_QUORUM detection with a {args.interval}s probe interval: ours median {ours_m:.3f}s "
            f"max {max(ours_s):.3f}s (target < 1s); peer srvr|grep Mode median {peer_m:.3f}s "
            f"max {max(peer_s):.3f}s; ratio ours/peer {ours_m / peer_m:.2f}x"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--procs", type=int, default=4)
    parser.add_argument("--budget", type=int, default=5)
    parser.add_argument("--hold", type=float, default=0.05, help="seconds each lease is held")
    parser.add_argument("--interval", type=float, default=0.5, help="quorum probe interval, seconds")
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--out", type=Path, help="also write the report to this file")
    args = parser.parse_args()
    lines: list[str] = []

    def out(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    logging.getLogger("kazoo").setLevel(logging.ERROR)
    started = time.monotonic()
    ens = Ensemble()
    try:
        ens.start()
        version = four_letter(ens.members[0].client_port, "srvr").split()[2].split("-")[0]
        out(
            f"ensemble: 3 voters on loopback, ZooKeeper {version} (Debian package), tickTime {ens.tick_ms} ms"
        )
        contention(ens, args, out)
        detection(ens, args, out)
    finally:
        ens.close()
    out(f"total bench time {time.monotonic() - started:.0f}s")
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
