"""Record real 4lw replies for the unit tests (run: `python -m tests.integration.zk_capture DIR`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tests.integration.zk_ensemble import Ensemble, Member, four_letter


def capture(out: Path) -> None:
    """Record real 4lw replies in the states the unit tests replay (`python -m tests.integration.zk_capture
    DIR`). Addresses in the replies are not rewritten: they carry no host names, only loopback ports."""

    def save(state: str, name: str, m: Member) -> None:
        for command in ("ruok", "srvr", "mntr", "isro"):
            path = out / state / f"{name}.{command}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(four_letter(m.client_port, command))

    ens = Ensemble().start()
    try:
        leader = ens.wait_serving()
        save("all_up", "leader", leader)
        save("all_up", "follower", ens.followers()[0])
        ens.kill(leader)
        new_leader = ens.wait_serving(voters=2)
        save("leader_killed", "leader", new_leader)
        save("leader_killed", "follower", ens.followers()[0])
        ens.kill(ens.followers()[0])
        save("two_killed", "leader_alone", new_leader)  # before it notices: a leader without followers
        deadline = time.monotonic() + 30
        while "not currently serving" not in four_letter(new_leader.client_port, "srvr"):
            time.sleep(0.05)
        save("two_killed", "not_serving", new_leader)
        while new_leader.mode() != "read-only" and time.monotonic() < deadline:
            time.sleep(0.5)
        save("two_killed", "read_only", new_leader)
    finally:
        ens.close()
    capture_whitelisted(out, save)


def capture_whitelisted(out: Path, save: Callable[[str, str, Member], None]) -> None:
    """ZooKeeper's default whitelist since 3.5.3 (`srvr` only): an ensemble and a standalone server."""
    ens = Ensemble(whitelist="srvr").start()
    try:
        leader = ens.wait_serving()
        save("whitelist_srvr_only", "leader", leader)
        save("whitelist_srvr_only", "server", ens.followers()[0])
    finally:
        ens.close()
    ens = Ensemble(size=1, whitelist="srvr", standalone=True).start()
    try:
        save("whitelist_srvr_only", "standalone", ens.members[0])
    finally:
        ens.close()


if __name__ == "__main__":
    import sys

    if sys.argv[2:] == ["--whitelisted"]:
        target = Path(sys.argv[1])

        def save(state: str, name: str, m: Member) -> None:
            for command in ("ruok", "srvr", "mntr", "isro"):
                path = target / state / f"{name}.{command}"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(four_letter(m.client_port, command))

        capture_whitelisted(target, save)
    else:
        capture(Path(sys.argv[1]))
