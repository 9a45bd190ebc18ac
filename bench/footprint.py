"""The agent's footprint beside node_exporter's: resident memory and CPU, same machine, same run.

`python bench/footprint.py` starts the agent with the default config (no file: the built-in defaults, as
`gpuwarden agent` runs out of the box) and Debian's prometheus-node-exporter with its defaults, scrapes
each every 15 s as Prometheus would, waits `--seconds` (60), and reads both processes' /proc entries:
RSS (VmRSS) and CPU (utime + stime after the first scrape, over the wall time since, in millicores).
A second agent runs beside them as the package installs it (examples/agent.yaml, `--log-format json`
from /etc/default/gpuwarden): reading a config file costs PyYAML, which the built-in defaults do not load.
Then it says where the agent's memory goes: anonymous (Python objects) against file-backed (shared
libraries), the largest mappings, the threads, and the imported modules by top-level package.
MB here is 10^6 bytes. The last line is `rss_mb=<agent> node_exporter_rss_mb=<peer> cpu_mcpu=<agent>`.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEERS = ("prometheus-node-exporter", "node_exporter")
TICK = os.sysconf("SC_CLK_TCK")
SCRAPE_EVERY = 15.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def status(pid: int) -> dict[str, int]:
    """VmRSS, RssAnon, RssFile (kB) and Threads from /proc/PID/status."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "Threads"):
            out[key] = int(value.split()[0])
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14 and 15 of stat)


def mappings(pid: int, top: int) -> list[tuple[int, str]]:
    """The largest resident mappings (kB), by file; anonymous memory summed as `[anon]`."""
    rss: collections.Counter[str] = collections.Counter()
    name = "[anon]"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split(None, 1)[0]
        if not head.endswith(":"):  # a mapping's header line: address perms offset dev inode [path]
            parts = line.split(None, 5)
            name = parts[5].strip() if len(parts) > 5 else "[anon]"
        elif head == "Rss:":
            rss[name] += int(line.split()[1])
    return [(kb, path) for path, kb in rss.most_common(top)]


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        return bytes(response.read())


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Until `url` serves a non-empty body: the agent answers empty until its first collection is done."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args[0]} exited with {proc.returncode} before serving {url}")
        try:
            if get(url):
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout}s")


def imported_packages(config: list[str]) -> collections.Counter[str]:
    """Top-level packages the agent imports at start (a separate start under -X importtime)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", _IMPORTS, *config],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    counts: collections.Counter[str] = collections.Counter()
    for line in proc.stderr.splitlines()[1:]:
        parts = line.split("|")
        if len(parts) == 3:
            counts[parts[2].strip().split(".")[0]] += 1
    return counts


# What `gpuwarden agent` imports before its first collection: the CLI, the config, the daemon and the
# collectors the config enables (built, not run: building one is what imports its implementation).
_IMPORTS = """
import sys, logging
from gpuwarden import cli, config
cli.build_parser()
from gpuwarden.agent import daemon, registry
from gpuwarden.agent.context import build_collector
cfg = config.load(sys.argv[1] if len(sys.argv) > 1 else None)
for name in sorted(registry.REGISTRY):
    if cfg.collector_settings(name).enabled:
        build_collector(name, cfg, logging.getLogger("bench")).close()
"""


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--config", help="agent config file (default: none, the built-in defaults)")
    args = parser.parse_args()
    # As the package installs it: bytecode compiled (compiling at start would count the compiler's memory).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "gpuwarden")], check=True)
    peer = next((shutil.which(p) for p in PEERS if shutil.which(p)), None)
    if peer is None:
        raise SystemExit("node_exporter is not installed (Debian package prometheus-node-exporter)")
    config = ["--config", args.config] if args.config else []
    ours_port, peer_port, packaged_port = free_port(), free_port(), free_port()
    packaged = ["--config", str(ROOT / "examples" / "agent.yaml"), "--log-format", "json"]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    with tempfile.TemporaryDirectory() as tmp:
        stderr = open(Path(tmp) / "agent.stderr", "wb")  # noqa: SIM115 - closed below
        agent = subprocess.Popen(
            [sys.executable, "-m", "gpuwarden", "agent", *config, "--listen", f"127.0.0.1:{ours_port}"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=env,
        )
        node = subprocess.Popen(
            [peer, f"--web.listen-address=127.0.0.1:{peer_port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        as_packaged = subprocess.Popen(
            [sys.executable, "-m", "gpuwarden", "agent", *packaged, "--listen", f"127.0.0.1:{packaged_port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        procs = {"gpuwarden": agent, "node_exporter": node, "gpuwarden (pkg)": as_packaged}
        urls = {
            "gpuwarden": f"http://127.0.0.1:{ours_port}/metrics",
            "node_exporter": f"http://127.0.0.1:{peer_port}/metrics",
            "gpuwarden (pkg)": f"http://127.0.0.1:{packaged_port}/metrics",
        }
        try:
            for name, url in urls.items():
                wait_http(url, procs[name])
            start = time.monotonic()
            cpu0 = {name: cpu_seconds(p.pid) for name, p in procs.items()}
            sizes = {name: len(get(url)) for name, url in urls.items()}
            next_scrape = start + SCRAPE_EVERY
            while (now := time.monotonic()) < start + args.seconds:
                time.sleep(max(0.0, min(next_scrape, start + args.seconds) - now))
                if time.monotonic() >= next_scrape:
                    for url in urls.values():
                        get(url)
                    next_scrape += SCRAPE_EVERY
            wall = time.monotonic() - start
            cpu = {name: (cpu_seconds(p.pid) - cpu0[name]) / wall * 1000 for name, p in procs.items()}
            mem = {name: status(p.pid) for name, p in procs.items()}
            top = mappings(agent.pid, 12)
        finally:
            for p in procs.values():
                p.send_signal(signal.SIGTERM)
            for p in procs.values():
                p.wait(15)
            stderr.close()
        log = (Path(tmp) / "agent.stderr").read_text(errors="replace")
    packages = imported_packages(config)

    def mb(kb: int) -> float:
        return kb * 1024 / 1e6

    print(f"# gpuwarden bench/footprint.py — {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
    print(
        f"python {sys.version.split()[0]}; config: {args.config or 'built-in defaults'}; {wall:.0f} s after"
        f" the first scrape, both scraped every {SCRAPE_EVERY:g} s"
    )
    for name in procs:
        m = mem[name]
        print(
            f"  {name:15s} RSS {mb(m['VmRSS']):6.1f} MB (anon {mb(m['RssAnon']):5.1f},"
            f" file {mb(m['RssFile']):5.1f})  threads {m['Threads']:3d}  CPU {cpu[name]:6.2f} mCPU"
            f"  /metrics {sizes[name]} bytes"
        )
    ours, theirs = mem["gpuwarden"]["VmRSS"], mem["node_exporter"]["VmRSS"]
    print(f"  ratio RSS gpuwarden / node_exporter = {ours / theirs:.2f}")
    print("  gpuwarden (pkg): the same agent with the packaged examples/agent.yaml and --log-format json")
    print("gpuwarden's largest resident mappings:")
    for kb, path in top:
        short = re.sub(r".*/site-packages/", "site-packages/", path)  # no host paths in results
        print(f"  {mb(kb):6.2f} MB  {short if short != path else os.path.basename(path)}")
    print(f"modules imported before the first collection: {sum(packages.values())}, by package:")
    print("  " + ", ".join(f"{pkg} {n}" for pkg, n in packages.most_common(24)))
    collectors = [line.split("collectors: ", 1)[1] for line in log.splitlines() if "collectors: " in line]
    print(f"collectors: {collectors[-1] if collectors else '?'}")
    print(f"rss_mb={mb(ours):.1f} node_exporter_rss_mb={mb(theirs):.1f} cpu_mcpu={cpu['gpuwarden']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
