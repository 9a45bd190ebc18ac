"""A real ZooKeeper ensemble on loopback, from Debian's `zookeeper` package: the demo's fleet, the tests'
fixtures (tests/integration/zk_ensemble.py re-exports it) and the fleet bench.

Each server is a `QuorumPeerMain` JVM in its own process group with its own data dir and free ports, so a
test can kill, stop and restart single members. `close()` kills every process group even when a test
failed half-way. Settings follow kazoo's own harness (kazoo/testing/common.py): `readonlymode.enabled`
so a server cut off from the quorum answers `isro` = `ro`, `maxClientCnxns=0` because every client of a
test comes from 127.0.0.1 (the default of 60 per IP would refuse the fleet bench's 200 sessions).

Debian's zookeeper.jar manifest omits netty-codec/netty-resolver (the server then logs
`NoClassDefFoundError: io/netty/handler/codec/ByteToMessageDecoder`), so the class path names them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from gpuwarden.collectors.zookeeper import probe
from gpuwarden.collectors.zookeeper.parse import parse_mntr

JARS = "/usr/share/java"
CLASSPATH = ":".join(
    f"{JARS}/{jar}.jar"
    for jar in ("zookeeper", "zookeeper-jute", "netty-codec", "netty-resolver", "slf4j-simple")
)
MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"


def zookeeper_available() -> bool:
    return shutil.which("java") is not None and Path(f"{JARS}/zookeeper.jar").exists()


def free_ports(count: int) -> list[int]:
    """`count` distinct free TCP ports on loopback (bound together so none repeats)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def four_letter(port: int, command: str, timeout: float = 1.0) -> str:
    """One 4lw to the loopback server on `port`, read to EOF; '' when the server cannot be reached."""
    return probe.four_letter(f"127.0.0.1:{port}", command, timeout).text


@dataclass
class Member:
    myid: int
    client_port: int
    quorum_port: int
    election_port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    def mode(self) -> str:
        for line in four_letter(self.client_port, "srvr").splitlines():
            if line.startswith("Mode: "):
                return line.removeprefix("Mode: ").strip()
        return ""


@dataclass
class Ensemble:
    """`size` voting members, optionally `whitelist` for `4lw.commands.whitelist` (ZooKeeper admin guide)."""

    size: int = 3
    whitelist: str = "*"
    standalone: bool = False  # one server, no server.N lines: Mode standalone (zookeeperStarted guide)
    tick_ms: int = 500
    members: list[Member] = field(default_factory=list)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="gpuwarden-zk-")))
    keep_files: bool = False  # close() leaves data dirs and server logs (the demo keeps them to read)

    def __post_init__(self) -> None:
        ports = free_ports(3 * self.size)
        for i in range(self.size):
            workdir = self.root / f"server{i + 1}"
            (workdir / "data").mkdir(parents=True)
            (workdir / "data" / "myid").write_text(f"{i + 1}\n")
            self.members.append(Member(i + 1, ports[3 * i], ports[3 * i + 1], ports[3 * i + 2], workdir))
        servers = "\n".join(
            f"server.{m.myid}=127.0.0.1:{m.quorum_port}:{m.election_port}:participant;127.0.0.1:{m.client_port}"
            for m in self.members
        )
        if self.standalone:
            servers = "standaloneEnabled=true"  # the last standaloneEnabled line wins
        for m in self.members:
            # initLimit/syncLimit in ticks; a 500 ms tick keeps elections short on a busy 2-core runner.
            (m.workdir / "zoo.cfg").write_text(
                f"tickTime={self.tick_ms}\ninitLimit=20\nsyncLimit=4\n"
                f"dataDir={m.workdir / 'data'}\nclientPortAddress=127.0.0.1\n"
                f"clientPort={m.client_port}\nmaxClientCnxns=0\nadmin.enableServer=false\n"
                f"4lw.commands.whitelist={self.whitelist}\nstandaloneEnabled=false\n"
                f"{servers}\n"
            )

    @property
    def hosts(self) -> str:
        return ",".join(m.address for m in self.members)

    @property
    def addresses(self) -> list[str]:
        return [m.address for m in self.members]

    def start(self, timeout: float = 60.0) -> Ensemble:
        for m in self.members:
            self.run(m)
        self.wait_serving(timeout)
        return self

    def run(self, m: Member) -> None:
        if m.proc is not None and m.proc.poll() is None:
            return
        log = open(m.workdir / "server.log", "ab")  # noqa: SIM115 - the child owns it
        m.proc = subprocess.Popen(
            [
                "java", "-Xmx192m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-Dreadonlymode.enabled=true", "-Dzookeeper.jmx.log4j.disable=true",
                "-cp", CLASSPATH, MAIN, str(m.workdir / "zoo.cfg"),
            ],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()

    def kill(self, m: Member) -> float:
        """SIGKILL the member's process group; returns the monotonic time the signal was sent."""
        sent = time.monotonic()
        if m.proc is not None and m.proc.poll() is None:
            os.killpg(m.proc.pid, signal.SIGKILL)
            m.proc.wait(10)
        m.proc = None
        return sent

    def leader(self) -> Member | None:
        leaders = [m for m in self.members if m.mode() == "leader"]
        return leaders[0] if len(leaders) == 1 else None

    def followers(self) -> list[Member]:
        return [m for m in self.members if m.mode() == "follower"]

    def wait_serving(self, timeout: float = 60.0, voters: int | None = None) -> Member:
        """Wait until one leader sees `voters - 1` synced followers (all members by default)."""
        wanted = (voters or len([m for m in self.members if m.proc is not None])) - 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.members:
                if m.proc is not None and m.proc.poll() is not None:
                    tail = (m.workdir / "server.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"ZooKeeper server {m.myid} exited:\n{tail}")
            leader = self.leader()
            running = [m for m in self.members if m.proc is not None]
            if self.standalone and self.members[0].mode() == "standalone":
                return self.members[0]
            # A follower counts as synced on the leader before it serves clients itself: wait for both.
            if leader is not None and all(m.mode() in ("leader", "follower") for m in running):
                mntr = four_letter(leader.client_port, "mntr")
                if "not in the whitelist" in mntr and len(self.followers()) >= wanted:
                    return leader  # a restricted whitelist: trust the followers' srvr Mode instead
                if parse_mntr(mntr)[0].get("zk_synced_followers", -1) >= wanted:
                    return leader
            time.sleep(0.2)
        raise TimeoutError(f"ensemble did not form in {timeout:.0f}s; logs under {self.root}")

    def close(self) -> None:
        for m in self.members:
            self.kill(m)
        if not self.keep_files:
            shutil.rmtree(self.root, ignore_errors=True)
