"""Agent registration: one ephemeral znode per agent, re-created whenever the session is replaced.

kazoo does not re-create ephemeral nodes after a session expires (kazoo #491, #600 on GitHub): the server
deletes them with the session and the client comes back CONNECTED on a *new* session. The state listener
only flips a flag and hands the work to `handler.spawn`, because a listener runs on kazoo's connection
thread and must never block or call ZooKeeper (kazoo #381, #405, #355).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kazoo.client import KazooState
from kazoo.exceptions import (
    ConnectionLoss,
    KazooException,
    NodeExistsError,
    NoNodeError,
    OperationTimeoutError,
    SessionExpiredError,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.retry import ForceRetryError, KazooRetry
from kazoo.retry import InterruptedError as RetryInterrupted

from gpuwarden.fleet.client import FleetClient, log


@dataclass(frozen=True)
class AgentRecord:
    """One registered agent as `gpuwarden fleet ls` shows it."""

    node: str
    version: str
    health: str
    gpus: int
    session: int
    info: Mapping[str, Any]

    @classmethod
    def from_znode(cls, node: str, data: bytes, session: int) -> AgentRecord:
        try:
            info = json.loads(data.decode("utf-8")) if data else {}
        except (UnicodeDecodeError, json.JSONDecodeError):
            info = {}
        if not isinstance(info, dict):
            info = {}
        gpus = info.get("gpus")
        return cls(
            node=node,
            version=str(info.get("version", "?")),
            health=str(info.get("health", "UNKNOWN")),
            gpus=len(gpus) if isinstance(gpus, list) else 0,
            session=session,
            info=info,
        )


def serverset_member(url: str) -> bytes:
    """The Finagle/Aurora serverset member JSON that Prometheus' `serverset_sd_configs` reads, for the agent
    serving at `url` (scheme://host:port). A wildcard listen address is advertised as this host's name."""
    scheme, _, rest = url.partition("://")
    host, _, port = rest.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::"):
        host = socket.getfqdn()
    endpoint = {"host": host, "port": int(port)}
    member = {"serviceEndpoint": endpoint, "additionalEndpoints": {scheme: endpoint}, "status": "ALIVE"}
    return json.dumps(member, sort_keys=True).encode("utf-8")


class Registration:
    def __init__(self, fleet: FleetClient, info: Mapping[str, Any], endpoint: str | None = None) -> None:
        self.fleet = fleet
        self.path = f"{fleet.agents_path}/{fleet.node}"
        # Beside the fleet record, in the serverset format, so Prometheus finds the agents in ZooKeeper:
        # ephemeral too, so a dead agent leaves discovery with its session.
        self.serverset_path = f"{fleet.root}/serverset/{fleet.node}"
        self.endpoint = endpoint
        self._info = dict(info)
        self._lock = threading.Lock()  # guards _info
        self._registering = threading.Lock()
        self._stopped = threading.Event()
        self._needs_register = threading.Event()
        self._dirty = threading.Event()  # an update could not be sent
        self.registrations = 0  # how many times the node was (re-)created; tests and the log read it

    def start(self) -> Registration:
        """Register now if connected, else as soon as the session is CONNECTED (the listener does it)."""
        self._needs_register.set()  # before the listener, so a CONNECTED in between is not missed
        self.fleet.add_listener(self._on_state)
        if self.fleet.connected:
            self._register_until_done()
        return self

    def update(self, info: Mapping[str, Any]) -> None:
        """Publish a new health summary without blocking; while disconnected it is sent on reconnect.

        An unchanged summary is not written again: the daemon refreshes every few seconds on every node, a
        ZooKeeper write is a quorum write, and the ephemeral node itself already says the agent is alive."""
        info = dict(info)
        with self._lock:
            if info == self._info and not self._dirty.is_set():
                return
            self._info = info
        self._publish()

    def _publish(self) -> None:
        if not self.fleet.connected:
            self._dirty.set()
            return
        self.fleet.zk.set_async(self.path, self._payload()).rawlink(self._published)

    def _published(self, result: Any) -> None:
        # kazoo's callback thread: record and hand off, never block.
        try:
            result.get_nowait()
        except NoNodeError:
            self._needs_register.set()
            self.fleet.zk.handler.spawn(self._register_until_done)
        except Exception as err:  # noqa: BLE001 - any failure means: publish again on reconnect
            self._dirty.set()
            log.warning("fleet: cannot update registration %s: %s", self.path, err)

    def stop(self) -> None:
        self._stopped.set()
        self.fleet.zk.remove_listener(self._on_state)
        if self.fleet.connected:  # otherwise the ephemeral node goes with the session
            self.fleet.zk.delete_async(self.path)
            if self.endpoint:
                self.fleet.zk.delete_async(self.serverset_path)

    def _payload(self) -> bytes:
        with self._lock:
            info = {**self._info, "updated_at": time.time()}
        return json.dumps(info, sort_keys=True).encode("utf-8")

    def _on_state(self, state: str) -> None:
        # Runs on kazoo's connection thread: flag and hand off, never block here.
        if state == KazooState.LOST:
            self._needs_register.set()
        elif state == KazooState.CONNECTED and not self._stopped.is_set():
            if self._needs_register.is_set():
                self.fleet.zk.handler.spawn(self._register_until_done)
            elif self._dirty.is_set():
                self._dirty.clear()
                self.fleet.zk.handler.spawn(self._publish)

    def _register_until_done(self) -> None:
        # start(), a CONNECTED and a failed update can each ask at about the same time: one at a time, and
        # whoever comes second finds the flag cleared instead of registering the node again.
        zk = self.fleet.zk
        # kazoo's own retry policy: connection losses are retried with a capped back-off until the node
        # exists, the agent stops, or the session is LOST (then the listener asks again on the new one).
        retry = KazooRetry(
            max_tries=-1,
            delay=0.1,
            backoff=2,
            max_delay=2.0,
            ignore_expire=False,
            interrupt=lambda: self._stopped.is_set() or zk.state == KazooState.LOST,
        )
        with self._registering:
            while self._needs_register.is_set() and not self._stopped.is_set():
                self._needs_register.clear()  # before the create: a LOST from here on asks again
                try:
                    retry(self._register_once)
                    self._dirty.clear()
                except KazooException as err:  # interrupted, session expired, or refused for good
                    self._needs_register.set()
                    if not isinstance(err, RetryInterrupted | SessionExpiredError):
                        log.error("fleet: cannot register %s: %s", self.path, err)
                    return

    def _register_once(self) -> None:
        try:
            self._register()
        except (ConnectionLoss, OperationTimeoutError, KazooTimeoutError) as err:
            log.warning("fleet: registering %s failed (%s); retrying", self.path, type(err).__name__)
            raise ForceRetryError() from err

    def _register(self) -> None:
        zk = self.fleet.zk
        self._create(self.path, self._payload())
        if self.endpoint:
            self._create(self.serverset_path, serverset_member(self.endpoint))
        self.registrations += 1
        log.info("fleet: registered %s (session 0x%x)", self.path, zk.client_id[0])

    def _create(self, path: str, data: bytes) -> None:
        zk = self.fleet.zk
        try:
            zk.create(path, data, ephemeral=True, makepath=True)
        except NodeExistsError:
            _, stat = zk.get(path)
            if stat.ephemeralOwner != zk.client_id[0]:
                # Left by this agent's previous session (restart within the session timeout) or by a
                # second agent with the same node name: the newest registration wins, loudly.
                log.warning("fleet: replacing %s owned by session 0x%x", path, stat.ephemeralOwner)
                with contextlib.suppress(NoNodeError):
                    zk.delete(path, version=stat.version)
                zk.create(path, data, ephemeral=True, makepath=True)
            else:
                zk.set(path, data)


def list_agents(fleet: FleetClient) -> list[AgentRecord]:
    """Every registered agent, sorted by node name. Raises kazoo errors when ZooKeeper is away."""
    zk = fleet.zk
    try:
        children = zk.get_children(fleet.agents_path)
    except NoNodeError:
        return []
    records = []
    for child in sorted(children):
        try:
            data, stat = zk.get(f"{fleet.agents_path}/{child}")
        except NoNodeError:
            continue  # deregistered between the two calls
        records.append(AgentRecord.from_znode(child, data, stat.ephemeralOwner))
    return records
