"""ZooKeeper 4lw parsing and per-server classification, on replies recorded from a real 3.8.0 ensemble.

The fixtures under tests/fixtures/zookeeper/ were written by `python -m tests.integration.zk_capture DIR`
against Debian's zookeeper package; each state directory holds one server's ruok/srvr/mntr/isro replies.
"""

from __future__ import annotations

import pytest

from gpuwarden.collectors.zookeeper.parse import Mode, Reply, classify, parse_mntr, parse_srvr
from tests.fixtures.zookeeper.support import FIXTURES, recorded, replies


@pytest.mark.parametrize(
    ("case", "mode"),
    [
        ("all_up/leader", Mode.LEADER),
        ("all_up/follower", Mode.FOLLOWER),
        ("leader_killed/leader", Mode.LEADER),
        ("two_killed/leader_alone", Mode.LEADER),
        ("two_killed/not_serving", Mode.NOT_SERVING),
        ("two_killed/read_only", Mode.READ_ONLY),
        ("whitelist_srvr_only/leader", Mode.LEADER),
        ("whitelist_srvr_only/server", Mode.FOLLOWER),
        ("whitelist_srvr_only/standalone", Mode.STANDALONE),
    ],
)
def test_each_recorded_server_state_is_classified_as_what_it_was(case: str, mode: Mode) -> None:
    assert recorded(case).mode is mode


def test_a_server_out_of_quorum_still_answers_imok_but_is_not_serving() -> None:
    status = recorded("two_killed/not_serving")
    assert status.ruok is True
    assert status.mode is Mode.NOT_SERVING


def test_the_whole_mntr_reply_is_parsed_past_the_8k_that_kazoo_command_reads() -> None:
    text = (FIXTURES / "all_up/leader.mntr").read_text()
    assert len(text.encode()) > 8192
    numbers, strings = parse_mntr(text)
    assert numbers["zk_synced_followers"] == 2
    assert numbers["zk_learners"] == 2
    assert strings["zk_server_state"] == "leader"
    # the last line of the reply made it too
    last_key = text.strip().splitlines()[-1].split("\t")[0]
    assert last_key in numbers


def test_the_leader_reports_its_synced_followers_and_learners() -> None:
    status = recorded("leader_killed/leader")
    assert status.stat("zk_synced_followers") == 1
    assert status.stat("zk_learners", "zk_followers") == 1
    assert status.peer_state == "leading - broadcast"


def test_a_pre_3_6_server_reporting_zk_followers_is_read_through_the_old_name() -> None:
    # Derived from the real capture: ZOOKEEPER-3117 renamed zk_followers to zk_learners in 3.6.
    r = replies("all_up/leader")
    old = Reply(r["mntr"].text.replace("zk_learners\t", "zk_followers\t"))
    status = classify("10.0.0.1:2181", r["ruok"], r["srvr"], old, r["isro"])
    assert status.stat("zk_learners", "zk_followers") == 2


def test_a_refused_mntr_takes_the_mode_srvr_gives_and_says_so() -> None:
    status = recorded("whitelist_srvr_only/server")
    assert status.mode is Mode.FOLLOWER and status.mntr_refused
    assert status.stats["zk_avg_latency"] == 0.0  # srvr's latency line still gives latency
    assert status.ruok is None  # ruok was refused too: unknown, not "dead"


def test_a_server_that_refuses_srvr_and_mntr_is_whitelist_blocked() -> None:
    refused = Reply("srvr is not executed because it is not in the whitelist.")
    mntr = Reply("mntr is not executed because it is not in the whitelist.")
    status = classify("10.0.0.1:2181", refused, refused, mntr, refused)
    assert status.mode is Mode.WHITELIST_BLOCKED and "4lw.commands.whitelist" in status.detail


def test_srvr_fields_parse_including_the_read_only_banner() -> None:
    fields = parse_srvr((FIXTURES / "two_killed/read_only.srvr").read_text())
    assert fields["Mode"] == "read-only"
    assert fields["Latency min/avg/max"].count("/") == 2


def test_a_failed_exchange_gives_unreachable_or_timeout_with_the_socket_error() -> None:
    refused = Reply(error=Mode.UNREACHABLE, detail="ruok: Connection refused")
    status = classify("10.0.0.1:2181", refused, refused, refused, refused)
    assert (status.mode, status.detail) == (Mode.UNREACHABLE, "ruok: Connection refused")
    slow = Reply(error=Mode.TIMEOUT, detail="srvr: no complete reply within 1s")
    assert classify("h:1", Reply("imok"), slow, slow, slow).mode is Mode.TIMEOUT


def test_garbage_replies_are_not_serving_rather_than_an_exception() -> None:
    junk = Reply("\x00\xff HTTP/1.1 400 Bad Request\n")
    assert classify("h:1", junk, junk, junk, junk).mode is Mode.NOT_SERVING
