"""GPU collector on a real node: agreement with nvidia-smi, then cycle time against nvidia-smi.

Run on a GPU node: `python bench/gpu.py`. Part 1 reads the same signals through `nvidia-smi --query-gpu`
and through the collector back to back and prints both with a verdict per signal. Part 2 times one
`nvidia-smi --query-gpu` call (the peer: what nvidia_gpu_exporter runs per scrape) and one full
collection cycle of the core signals, in the same process run, and prints the ratio. The expensive
counters (energy, PCIe throughput, NVLink state) run on `slow_interval` and are timed separately.
Part 5 replays the H200 recordings and the 2-, 4- and 8-GPU ones derived from them
(tests/fixtures/nvml/derive_gpus.py) on the CPU: how the cycle grows with the GPU count, beside the real
one-GPU figure. `--replay-only` runs part 5 alone (no GPU needed).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gpuwarden.agent.registry import CollectorContext  # noqa: E402
from gpuwarden.collectors.gpu import GpuCollector, GpuSettings  # noqa: E402
from gpuwarden.paths import Paths  # noqa: E402

SMI_FIELDS = (
    "index,uuid,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw,clocks.sm,clocks.mem,"
    "ecc.errors.corrected.volatile.total,ecc.errors.uncorrected.volatile.total,"
    "ecc.errors.uncorrected.aggregate.total"
)
SMI = ["nvidia-smi", f"--query-gpu={SMI_FIELDS}", "--format=csv,noheader,nounits"]
MIB = 1024 * 1024


def collector(slow_interval: float = 60.0) -> GpuCollector:
    ctx = CollectorContext(Paths(), logging.getLogger("bench"))
    return GpuCollector(GpuSettings(slow_interval=slow_interval, nvml_events=False), ctx)


def samples(items: list[object]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for item in items:
        for s in getattr(item, "samples", []):
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(got: dict, name: str, gpu: str, **extra: str) -> float | None:  # type: ignore[type-arg]
    for (n, labels), v in got.items():
        d = dict(labels)
        if n == name and d.get("gpu") == gpu and all(d.get(k) == x for k, x in extra.items()):
            return v
    return None


def agreement(c: GpuCollector) -> bool:
    smi = subprocess.run(SMI, capture_output=True, text=True, check=True).stdout
    got = samples(list(c.collect()))
    all_ok = True
    print(f"{'gpu':>3} {'signal':<28} {'nvidia-smi':>14} {'gpuwarden':>14}  verdict")
    for line in smi.strip().splitlines():
        f = [x.strip() for x in line.split(",")]
        gpu = f[0]
        rows = [  # (signal, smi value in our unit, ours, tolerance): util and power are sampled, not read
            (
                "utilization (ratio)",
                float(f[2]) / 100,
                value(got, "gpuwarden_gpu_utilization_ratio", gpu),
                0.10,
            ),
            (
                "memory used (MiB)",
                float(f[3]),
                _div(value(got, "gpuwarden_gpu_memory_used_bytes", gpu), MIB),
                64,
            ),
            (
                "memory total (MiB)",
                float(f[4]),
                _div(value(got, "gpuwarden_gpu_memory_total_bytes", gpu), MIB),
                1,
            ),
            ("temperature (C)", float(f[5]), value(got, "gpuwarden_gpu_temperature_celsius", gpu), 2),
            ("power (W)", float(f[6]), value(got, "gpuwarden_gpu_power_watts", gpu), 30),
            (
                "SM clock (MHz)",
                float(f[7]),
                _div(value(got, "gpuwarden_gpu_clock_hertz", gpu, clock="sm"), 1e6),
                60,
            ),
            (
                "memory clock (MHz)",
                float(f[8]),
                _div(value(got, "gpuwarden_gpu_clock_hertz", gpu, clock="memory"), 1e6),
                1,
            ),
            (
                "ECC corrected volatile",
                _num(f[9]),
                value(got, "gpuwarden_gpu_ecc_errors_total", gpu, type="corrected", scope="volatile"),
                0,
            ),
            (
                "ECC uncorrected volatile",
                _num(f[10]),
                value(got, "gpuwarden_gpu_ecc_errors_total", gpu, type="uncorrected", scope="volatile"),
                0,
            ),
            (
                "ECC uncorrected aggregate",
                _num(f[11]),
                value(got, "gpuwarden_gpu_ecc_errors_total", gpu, type="uncorrected", scope="aggregate"),
                0,
            ),
        ]
        for signal, theirs, ours, tol in rows:
            good = theirs is not None and ours is not None and abs(theirs - ours) <= tol
            all_ok &= good
            print(
                f"{gpu:>3} {signal:<28} {_fmt(theirs):>14} {_fmt(ours):>14}  {'agree' if good else 'DIFFER'}"
                f" (tolerance {tol:g})"
            )
    return all_ok


def _div(v: float | None, d: float) -> float | None:
    return None if v is None else v / d


def _num(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:  # "[N/A]"
        return None


def _fmt(v: float | None) -> str:
    return "absent" if v is None else f"{v:.3f}".rstrip("0").rstrip(".")


def timed(fn, n: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def p(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]
    )


def profile() -> None:
    from gpuwarden.collectors.gpu.collector import _snapshot  # noqa: PLC2701
    from gpuwarden.collectors.gpu.kmsg import KmsgReader
    from gpuwarden.collectors.gpu.nvml_backend import NvmlBackend
    from gpuwarden.collectors.gpu.nvml_thread import NvmlThread
    from gpuwarden.collectors.gpu.queries import FAST, QUERIES

    backend = NvmlBackend()
    backend.init()
    costs = []
    for q in QUERIES:

        def call(key: str = q.key) -> None:
            with contextlib.suppress(Exception):  # NOT_SUPPORTED costs time too
                backend.query(0, key)

        timed(call, 5)
        costs.append((p(timed(call, 50), 50) * 1e6, q.key, "slow" if q.slow else "fast"))
    for us, key, tier in sorted(costs, reverse=True):
        print(f"  {key:<28} {tier:<5} {us:10.1f} us")
    unsupported: set[str] = set()
    _snapshot(backend, 0, FAST, unsupported)
    snap = timed(lambda: _snapshot(backend, 0, FAST, unsupported), 200)
    thread = NvmlThread()
    hop = timed(lambda: thread.run("noop", lambda: None, 2.0), 200)
    future = timed(_future_round_trip(), 200)
    reader = KmsgReader(Paths().dev("kmsg"))
    reader.poll()
    kmsg = timed(reader.poll, 200)
    print(
        f"  fast snapshot, direct: {p(snap, 50) * 1e3:.3f} ms; NVML thread hop: {p(hop, 50) * 1e6:.1f} us"
        f" (a concurrent.futures round trip instead: {p(future, 50) * 1e6:.1f} us);"
        f" kmsg poll: {p(kmsg, 50) * 1e6:.1f} us"
    )
    handle = backend._handles[0]
    wrapper = timed(lambda: backend._nvml.nvmlDeviceGetComputeRunningProcesses(handle), 200)
    one_call = timed(lambda: backend._processes.read(handle), 200)
    print(
        f"  process list: nvidia-ml-py's wrapper (two calls) {p(wrapper, 50) * 1e6:.1f} us;"
        f" one call into a kept buffer {p(one_call, 50) * 1e6:.1f} us"
    )
    thread.stop()
    backend.shutdown()


def _future_round_trip():  # type: ignore[no-untyped-def]
    """A job handed to a thread and awaited through a Future (how the NVML thread worked before)."""
    import queue
    import threading
    from concurrent.futures import Future

    jobs: queue.SimpleQueue[Future[None]] = queue.SimpleQueue()

    def loop() -> None:
        while True:
            jobs.get().set_result(None)

    threading.Thread(target=loop, daemon=True).start()

    def trip() -> None:
        future: Future[None] = Future()
        jobs.put(future)
        future.result(timeout=2.0)

    return trip


def split_cycle(c: GpuCollector) -> None:
    """One cycle's parts: the NVML job through the thread, and the main thread's Python (cProfile)."""
    import cProfile
    import io
    import pstats

    from gpuwarden.collectors.gpu.collector import _all_snapshots
    from gpuwarden.collectors.gpu.queries import FAST

    list(c.collect())
    list(c.collect())
    thread, backend = c._thread, c._backend
    assert thread is not None and backend is not None

    def inner() -> float:
        start = time.perf_counter()
        _all_snapshots(backend, FAST, c._unsupported)
        return time.perf_counter() - start

    job = timed(lambda: thread.run("job", lambda: _all_snapshots(backend, FAST, c._unsupported), 2.0), 300)
    inside = [thread.run("job", inner, 2.0) for _ in range(300)]
    whole = timed(lambda: list(c.collect()), 300)
    print(
        f"  NVML job through the thread: {p(job, 50) * 1e3:.3f} ms (timed inside the thread:"
        f" {p(inside, 50) * 1e3:.3f} ms); whole collect(): {p(whole, 50) * 1e3:.3f} ms"
    )
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(300):
        list(c.collect())
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).strip_dirs().sort_stats("tottime").print_stats(14)
    print("  300 cycles under cProfile (tottime; on Python 3.12 the NVML thread is profiled too):")
    print("\n".join("    " + line for line in out.getvalue().splitlines() if line.strip()[:1].isdigit()))


NVML_FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "nvml"


def replay_table(cycles: int, real_ms: float | None) -> None:
    """Cycle time of the replayed recordings for 1, 2, 4, 8 GPUs (the replay's own JSON copies included)."""
    print(f"{'GPUs':>4} {'state':<5} {'p50 ms':>8} {'p99 ms':>8} {'per GPU ms':>10}  recording")
    for state in ("idle", "busy"):
        for count in (1, 2, 4, 8):
            name = f"h200-{state}.json" if count == 1 else f"h200x{count}-{state}.json"
            ctx = CollectorContext(Paths(), logging.getLogger("bench"))
            settings = GpuSettings(
                backend="replay", replay_file=str(NVML_FIXTURES / name), nvml_events=False, kmsg=False
            )
            c = GpuCollector(settings, ctx)
            list(c.collect())
            t = timed(lambda c=c: list(c.collect()), cycles)
            c.close()
            print(
                f"{count:>4} {state:<5} {p(t, 50) * 1e3:8.3f} {p(t, 99) * 1e3:8.3f}"
                f" {p(t, 50) * 1e3 / count:10.3f}  {name}"
            )
    if real_ms is not None:
        print(f"real, this node (part 2): {real_ms:.3f} ms per cycle")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cycles", type=int, default=500)
    parser.add_argument("--smi-runs", type=int, default=20)
    parser.add_argument("--replay-only", action="store_true", help="part 5 only: replayed 1-8 GPUs")
    args = parser.parse_args()
    if args.replay_only:
        print(
            f"# gpuwarden bench/gpu.py --replay-only, {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}"
        )
        print("\n## 5. cycle time by GPU count, replayed H200 recordings (CPU only)")
        replay_table(args.cycles, None)
        return 0

    c = collector()
    list(c.collect())  # init NVML once and read the slow counters, as the agent's first cycle does
    got = samples(list(c.collect()))
    count = int(next(v for (n, _), v in got.items() if n == "gpuwarden_gpu_devices"))
    driver = c.driver_version
    print(
        f"# gpuwarden bench/gpu.py — {count} GPU(s), driver {driver},"
        f" {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}"
    )
    print("\n## 1. agreement with nvidia-smi at the same moment")
    ok = agreement(c)
    print(f"result: {'all signals agree' if ok else 'SOME SIGNALS DIFFER'}")

    print("\n## 2. cycle time")
    smi = timed(lambda: subprocess.run(SMI, capture_output=True, check=True), args.smi_runs)
    core = timed(lambda: list(c.collect()), args.cycles)
    slow_c = collector(slow_interval=1e-9)
    list(slow_c.collect())
    full = timed(lambda: list(slow_c.collect()), max(20, args.cycles // 10))
    slow_c.close()
    c.close()
    smi_ms, core_ms, full_ms = p(smi, 50) * 1e3, p(core, 50) * 1e3, p(full, 50) * 1e3
    print(
        f"peer  nvidia-smi --query-gpu (one call, {count} GPU(s), {args.smi_runs} runs): p50 {smi_ms:.2f} ms"
        f"  p99 {p(smi, 99) * 1e3:.2f} ms"
    )
    print(
        f"ours  collect(), core signals ({args.cycles} cycles): p50 {core_ms:.3f} ms"
        f"  p99 {p(core, 99) * 1e3:.3f} ms"
        f"  = {core_ms / count:.3f} ms per GPU"
    )
    print(
        f"ours  collect() with the slow counters too ({len(full)} cycles): p50 {full_ms:.3f} ms"
        f"  p99 {p(full, 99) * 1e3:.3f} ms  (runs every slow_interval, 60 s by default)"
    )
    print(f"ratio nvidia-smi / core cycle: {smi_ms / core_ms:.1f}x   (target >= 50x)")
    print(f"ratio nvidia-smi / cycle with slow counters: {smi_ms / full_ms:.1f}x")

    print("\n## 3. where the time goes (p50 of steady-state calls, after warm-up)")
    profile()
    split_cycle(c2 := collector())
    c2.close()

    print("\n## 4. XID event thread")
    ctx = CollectorContext(Paths(), logging.getLogger("bench"))
    watched = GpuCollector(GpuSettings(), ctx)
    list(watched.collect())
    time.sleep(3.5)
    got = samples(list(watched.collect()))
    w = watched.watcher
    up = [
        v
        for (n, labels), v in got.items()
        if n == "gpuwarden_gpu_xid_source_up" and dict(labels)["source"] == "nvml"
    ]
    print(
        f"registered GPUs: {w.registered if w else None};"
        f" waits of 1 s completed in 3.5 s: {w.waits if w else 0};"
        f" error: {w.error if w else 'no watcher'}; xid_source_up{{source=nvml}}:"
        f" {up[0] if up else None}"
    )
    watched.close()
    print("\n## 5. cycle time by GPU count, replayed H200 recordings (CPU only)")
    replay_table(args.cycles, core_ms)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
