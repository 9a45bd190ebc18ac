"""One kazoo session per agent, with the znode layout of the fleet.

    /gpuwarden/<cluster>/agents/<node>   ephemeral, JSON: version, GPUs, health summary (registration.py)
    /gpuwarden/<cluster>/serverset/<node> ephemeral, serverset member JSON: where Prometheus scrapes the agent
    /gpuwarden/<cluster>/budget          kazoo Semaphore lease pool for disruptive remediations (budget.py)
    /gpuwarden/<cluster>/leader          kazoo Election for fleet-level decisions (election.py)

Retry policy: kazoo's defaults retry forever with a back-off up to an hour (`retry_max_delay=3600`), which
would leave an agent silent for long after ZooKeeper comes back. Reconnects here back off to at most 2 s
forever; commands get a few quick tries and then fail, so callers decide (the budget fails closed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from kazoo.client import KazooClient, KazooState
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.retry import KazooRetry

from gpuwarden.fleet.settings import FleetSettings

log = logging.getLogger("gpuwarden.fleet")


class FleetUnavailable(Exception):
    """ZooKeeper cannot be reached (or refused the session); the message says which and why."""


class FleetClient:
    def __init__(
        self,
        settings: FleetSettings,
        *,
        hosts: str | None = None,
        node: str | None = None,
        client: KazooClient | None = None,
    ) -> None:
        self.settings = settings
        self.node = node or settings.node_name()
        self.root = f"/gpuwarden/{settings.cluster}"
        self.agents_path = f"{self.root}/agents"
        self.budget_path = f"{self.root}/budget"
        self.leader_path = f"{self.root}/leader"
        self.hosts = hosts or settings.connect_string()
        self.zk = client or KazooClient(
            hosts=self.hosts,
            timeout=settings.session_timeout,
            connection_retry=KazooRetry(max_tries=-1, delay=0.1, backoff=2, max_delay=2.0),
            command_retry=KazooRetry(max_tries=3, delay=0.1, backoff=2, max_delay=1.0),
        )

    @property
    def state(self) -> str:
        return str(self.zk.state)

    @property
    def connected(self) -> bool:
        return bool(self.zk.connected) and self.zk.state == KazooState.CONNECTED

    def start(self) -> FleetClient:
        try:
            self.zk.start(timeout=self.settings.connect_timeout)
        except KazooTimeoutError:
            self.zk.stop()
            self.zk.close()
            raise FleetUnavailable(
                f"cannot reach ZooKeeper at {self.hosts} within {self.settings.connect_timeout:g}s"
            ) from None
        return self

    def add_listener(self, listener: Callable[[str], object]) -> None:
        """kazoo calls listeners on its connection thread: they must not block or call ZooKeeper."""
        self.zk.add_listener(listener)

    def stop(self) -> None:
        try:
            self.zk.stop()
        finally:
            self.zk.close()

    def __enter__(self) -> FleetClient:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
