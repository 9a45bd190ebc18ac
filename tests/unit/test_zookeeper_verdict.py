"""The ensemble verdict, from recorded server replies and from generated ensembles (hypothesis)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from gpuwarden.collectors.zookeeper.parse import Mode, Reply, ServerStatus, classify
from gpuwarden.collectors.zookeeper.verdict import Verdict, judge, majority
from tests.fixtures.zookeeper.support import FIXTURES, recorded

A, B, C = "10.0.0.1:2181", "10.0.0.2:2181", "10.0.0.3:2181"


def down(address: str) -> ServerStatus:
    return ServerStatus(address, Mode.UNREACHABLE, detail="ruok: Connection refused")


def test_all_up_is_ok_and_tolerates_one_failure() -> None:
    status = {
        A: recorded("all_up/leader", A),
        B: recorded("all_up/follower", B),
        C: recorded("all_up/follower", C),
    }
    v = judge([A, B, C], [], status)
    assert (v.verdict, v.leader, v.synced_voters, v.tolerable_failures) == (Verdict.OK, A, 3, 1)
    assert v.quorum_ok is True and v.exit_code == 0


def test_leader_killed_is_degraded_with_the_new_leader_and_no_failure_left() -> None:
    status = {A: down(A), B: recorded("leader_killed/leader", B), C: recorded("leader_killed/follower", C)}
    v = judge([A, B, C], [], status)
    assert (v.verdict, v.leader, v.tolerable_failures) == (Verdict.DEGRADED, B, 0)
    assert "2 of 3 voters in sync" in v.reasons[0]
    assert any(A in r and "unreachable" in r for r in v.reasons)
    assert v.exit_code == 1


def test_a_leader_whose_followers_are_gone_has_no_quorum_even_though_it_still_says_leader() -> None:
    status = {A: down(A), B: recorded("two_killed/leader_alone", B), C: down(C)}
    v = judge([A, B, C], [], status)
    assert v.verdict is Verdict.NO_QUORUM
    assert v.quorum_ok is False and v.exit_code == 2
    assert "1 of 3 voters in sync" in v.reasons[0]


def test_a_survivor_answering_imok_is_not_taken_as_quorum() -> None:
    for case in ("two_killed/not_serving", "two_killed/read_only"):
        status = {A: down(A), B: recorded(case, B), C: down(C)}
        v = judge([A, B, C], [], status)
        assert v.verdict is Verdict.NO_QUORUM, case
        assert any("imok" in r for r in v.reasons), v.reasons


def test_the_default_srvr_only_whitelist_judges_the_quorum_from_srvr() -> None:
    status = {
        A: recorded("whitelist_srvr_only/leader", A),
        B: recorded("whitelist_srvr_only/server", B),
        C: recorded("whitelist_srvr_only/server", C),
    }
    v = judge([A, B, C], [], status)
    assert (v.verdict, v.leader, v.synced_voters, v.tolerable_failures) == (Verdict.OK, A, 3, 1)
    assert "from srvr" in v.reasons[0]
    status[C] = down(C)
    assert judge([A, B, C], [], status).verdict is Verdict.DEGRADED


def test_a_standalone_server_that_allows_only_srvr_is_ok() -> None:
    v = judge([A], [], {A: recorded("whitelist_srvr_only/standalone", A)})
    assert (v.verdict, v.tolerable_failures) == (Verdict.OK, 0)


def test_a_whitelist_that_refuses_srvr_too_is_unknown_and_says_how_to_fix_it() -> None:
    refused = Reply("srvr is not executed because it is not in the whitelist.")
    blocked = classify(
        A, refused, refused, Reply("mntr is not executed because it is not in the whitelist."), refused
    )
    v = judge([A, B, C], [], {A: blocked, B: blocked, C: blocked})
    assert v.verdict is Verdict.UNKNOWN
    assert v.quorum_ok is None and v.tolerable_failures is None and v.exit_code == 3
    assert "4lw.commands.whitelist" in " ".join(v.reasons)


def test_non_voting_followers_do_not_count_toward_the_quorum() -> None:
    # The recorded 3.8.0 leader reports zk_synced_non_voting_followers 0; during a reconfig one of its two
    # synced followers is non-voting (apache/zookeeper Commands.java counts it in zk_synced_followers too).
    leader = recorded("all_up/leader", A)
    reconfig = replace(leader, stats={**leader.stats, "zk_synced_non_voting_followers": 1.0})
    status = {A: reconfig, B: recorded("all_up/follower", B), C: recorded("all_up/follower", C)}
    v = judge([A, B, C], [], status)
    assert (v.verdict, v.synced_voters, v.tolerable_failures) == (Verdict.DEGRADED, 2, 0)


def test_a_3_5_leader_without_zk_learners_or_non_voting_counts_is_judged() -> None:
    mntr = (FIXTURES / "versions" / "3.5.5-leader.mntr").read_text()
    status = classify(A, Reply(""), Reply(""), Reply(mntr), Reply(""))
    assert status.mode is Mode.LEADER and status.stat("zk_learners", "zk_followers") == 0
    v = judge([A], [], {A: status})
    assert (v.verdict, v.synced_voters) == (Verdict.OK, 1)


def test_two_leaders_are_a_split() -> None:
    status = {A: recorded("all_up/leader", A), B: recorded("all_up/leader", B), C: down(C)}
    v = judge([A, B, C], [], status)
    assert v.verdict is Verdict.SPLIT and v.exit_code == 2


def test_an_observer_down_degrades_but_does_not_count_against_quorum() -> None:
    status = {
        A: recorded("all_up/leader", A),
        B: recorded("all_up/follower", B),
        C: recorded("all_up/follower", C),
        "10.0.0.9:2181": down("10.0.0.9:2181"),
    }
    v = judge([A, B, C], ["10.0.0.9:2181"], status)
    assert (v.verdict, v.tolerable_failures) == (Verdict.DEGRADED, 1)


def test_a_single_standalone_server_is_ok_and_tolerates_nothing() -> None:
    status = {A: ServerStatus(A, Mode.STANDALONE)}
    v = judge([A], [], status)
    assert (v.verdict, v.tolerable_failures) == (Verdict.OK, 0)


def test_the_majority_of_n_voters_is_floor_half_plus_one() -> None:
    assert [majority(n) for n in (1, 2, 3, 4, 5, 7)] == [1, 2, 2, 3, 3, 4]


@given(voters=st.integers(1, 9), data=st.data())
def test_quorum_is_ok_exactly_when_the_leader_and_its_synced_followers_are_a_majority(
    voters: int, data: st.DataObject
) -> None:
    addresses = [f"10.0.0.{i}:2181" for i in range(1, voters + 1)]
    synced = data.draw(st.integers(0, voters - 1), label="synced followers")
    status = {a: ServerStatus(a, Mode.FOLLOWER, peer_state="following - broadcast") for a in addresses}
    status[addresses[0]] = ServerStatus(addresses[0], Mode.LEADER, {"zk_synced_followers": float(synced)})
    v = judge(addresses, [], status)
    assert v.quorum_ok == (synced + 1 >= majority(voters))
    assert v.tolerable_failures is not None and v.tolerable_failures >= 0
    if v.quorum_ok:
        assert v.tolerable_failures == synced + 1 - majority(voters)
        assert (v.verdict is Verdict.OK) == (synced == voters - 1)


def test_a_leader_whose_mntr_lacks_the_follower_count_is_judged_from_the_voters_srvr_modes() -> None:
    # A leader stepping down after losing its followers answers mntr without zk_synced_followers: that is
    # no quorum when no voter follows it (seen on a real ensemble), not an unknown.
    leader = ServerStatus(A, Mode.LEADER, {"zk_server_state": 1.0})
    gone = {B: ServerStatus(B, Mode.UNREACHABLE), C: ServerStatus(C, Mode.UNREACHABLE)}
    lost = judge([A, B, C], [], {A: leader, **gone})
    assert lost.verdict is Verdict.NO_QUORUM and "from srvr: no zk_synced_followers" in lost.reasons[0]
    following = {B: ServerStatus(B, Mode.FOLLOWER), C: ServerStatus(C, Mode.FOLLOWER)}
    assert judge([A, B, C], [], {A: leader, **following}).verdict is Verdict.OK
