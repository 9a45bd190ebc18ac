"""A ZooKeeper server that answers nonsense, endlessly or by the byte: the verdict is UNKNOWN with the
reason, never OK, and the probe stays within its deadline and its reply cap.

The servers are real loopback sockets replaying the replies recorded from a real 3.8.0 ensemble
(tests/fixtures/zookeeper/all_up), with the leader's replies made hostile.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from gpuwarden.collectors.zookeeper import collector as zk
from gpuwarden.collectors.zookeeper.parse import Mode
from gpuwarden.collectors.zookeeper.verdict import Verdict
from gpuwarden.health import State
from tests.fixtures.zookeeper.support import FIXTURES
from tests.golden import split

Answer = Callable[[socket.socket, str], None]


def recorded(role: str) -> Answer:
    def answer(conn: socket.socket, command: str) -> None:
        conn.sendall((FIXTURES / f"all_up/{role}.{command}").read_bytes())

    return answer


def nan_leader(conn: socket.socket, command: str) -> None:
    text = (FIXTURES / f"all_up/leader.{command}").read_text()
    if command == "mntr":  # every number of the leader's mntr becomes NaN
        text = re.sub(r"^(zk_\w+)\t-?[\d.]+$", r"\1\tNaN", text, flags=re.M)
    conn.sendall(text.encode())


def endless(conn: socket.socket, command: str) -> None:
    line = b"zk_znode_count\t5\n" * 4096
    while True:
        conn.sendall(line)


def trickle(conn: socket.socket, command: str) -> None:
    for byte in (FIXTURES / f"all_up/leader.{command}").read_bytes():
        conn.sendall(bytes([byte]))
        time.sleep(0.05)


class FakeServer:
    """Answers each four-letter word on its own connection, then closes it, as ZooKeeper does."""

    def __init__(self, answer: Answer) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.answer = answer
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # the probe hanging up is what it should do
            self.answer(conn, conn.recv(4).decode())

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def ensemble() -> Iterator[Callable[[Answer], list[str]]]:
    servers: list[FakeServer] = []

    def make(leader: Answer) -> list[str]:
        servers.extend(FakeServer(a) for a in (leader, recorded("follower"), recorded("follower")))
        return [s.address for s in servers]

    yield make
    for s in servers:
        s.close()


def test_the_recorded_ensemble_replayed_over_sockets_is_ok(ensemble: Callable[[Answer], list[str]]) -> None:
    verdict, _ = zk.check(ensemble(recorded("leader")), [], 1.0)
    assert verdict.verdict is Verdict.OK


def test_a_leader_answering_nan_is_unknown_with_the_reason_not_ok(
    ensemble: Callable[[Answer], list[str]],
) -> None:
    addresses = ensemble(nan_leader)
    verdict, status = zk.check(addresses, [], 1.0)
    assert status[addresses[0]].mode is Mode.BAD_REPLY
    assert verdict.verdict is Verdict.UNKNOWN
    metrics, health = split(zk.export("prod", verdict, status))
    (quorum,) = [h for h in health if h.component == "zookeeper.quorum"]
    assert quorum.state is State.UNKNOWN
    assert (
        "answers that are not ZooKeeper's (mntr zk_synced_followers is 'NaN', not a number)" in quorum.reason
    )
    samples = [s for m in metrics for s in m.samples]
    assert not [s for s in samples if s.value != s.value], "a NaN was exported"
    assert "gpuwarden_zookeeper_quorum_ok" not in {m.name for m in metrics}


def test_an_endless_reply_is_a_bad_reply_at_the_cap(ensemble: Callable[[Answer], list[str]]) -> None:
    addresses = ensemble(endless)
    verdict, status = zk.check(addresses, [], 2.0, max_reply_bytes=256 << 10)
    assert status[addresses[0]].mode is Mode.BAD_REPLY
    assert "ruok: reply larger than 262144 bytes (max_reply_bytes)" in status[addresses[0]].detail
    assert verdict.verdict is Verdict.UNKNOWN


def test_a_trickling_server_times_out_within_the_probe_timeout(
    ensemble: Callable[[Answer], list[str]],
) -> None:
    addresses = ensemble(trickle)
    started = time.monotonic()
    verdict, status = zk.check(addresses, [], 0.5)
    assert status[addresses[0]].mode is Mode.TIMEOUT
    assert time.monotonic() - started < 5  # a bound, not a timing: per-recv timeouts alone never end
    assert verdict.verdict is not Verdict.OK
