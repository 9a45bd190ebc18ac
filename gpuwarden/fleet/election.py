"""Leader election among the agents, for fleet-level decisions (scale signals): kazoo's Election recipe.

`Election.run(func)` blocks until this agent wins and holds leadership while `func` runs, so it lives in a
background thread. Leadership ends when the session is LOST (the lock znode is gone with it); while the
connection is SUSPENDED `is_leader` reads False, because kazoo's docs say to pause work that needs
agreement until the session is known to be alive.
"""

from __future__ import annotations

import threading

from kazoo.client import KazooState
from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError

from gpuwarden.fleet.client import FleetClient, log


class FleetLeader:
    def __init__(self, fleet: FleetClient) -> None:
        self.fleet = fleet
        self.election = fleet.zk.Election(fleet.leader_path, fleet.node)
        self._leading = threading.Event()
        self._deposed = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fleet-election", daemon=True)

    @property
    def is_leader(self) -> bool:
        return self._leading.is_set() and self.fleet.connected

    def leader(self) -> str | None:
        """The current leader's node name, as ZooKeeper sees it."""
        try:
            contenders = self.election.contenders()
        except (KazooException, KazooTimeoutError):
            return None
        return str(contenders[0]) if contenders else None

    def start(self) -> FleetLeader:
        self.fleet.add_listener(self._on_state)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._deposed.set()
        self.election.cancel()
        self.fleet.zk.remove_listener(self._on_state)
        self._thread.join(timeout=5)

    def _on_state(self, state: str) -> None:
        if state == KazooState.LOST:  # listener thread: only flag
            self._deposed.set()

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                self.election.run(self._lead)
            except (KazooException, KazooTimeoutError) as err:
                log.info("fleet: election interrupted (%s); contending again", err)
            self._stopped.wait(0.5)

    def _lead(self) -> None:
        self._deposed.clear()
        if not self.fleet.connected:
            return
        self._leading.set()
        log.info("fleet: %s is the fleet leader", self.fleet.node)
        try:
            self._deposed.wait()
        finally:
            self._leading.clear()
