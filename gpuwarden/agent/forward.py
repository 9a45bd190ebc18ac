"""Passing webhook alerts on to the agent that owns them, found in the fleet registry in ZooKeeper.

Each agent registers where it serves as a serverset member (`/gpuwarden/<cluster>/serverset/<node>`, the
entry Prometheus discovers it by); the leader is the first contender of the fleet election. A forwarded
delivery is an ordinary `POST /v1/alerts` with the same bearer token (the agents of a fleet share the
Alertmanager token) and `Gpuwarden-Forwarded: <hops>`. It is sent while Alertmanager waits, under one
short deadline for the whole exchange and a cap on the answer (gpuwarden.httpread): when it fails,
Alertmanager is answered 503 and sends the group again, and what this agent had queued already is dropped
as a duplicate then.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Protocol

from gpuwarden.agent.alerts import FleetView

if TYPE_CHECKING:  # kazoo loads when the fleet needs it, httpread (ssl) a forward (bench/footprint.py)
    from gpuwarden.fleet.member import FleetMember
    from gpuwarden.httpread import Reply

HOPS_HEADER = "Gpuwarden-Forwarded"


class FleetUnreachable(Exception):
    """The owner could not be found or did not take the alerts; `retry`: worth Alertmanager sending again."""

    def __init__(self, message: str, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


class Directory(Protocol):
    def view(self) -> FleetView: ...

    def endpoint(self, node: str) -> str: ...


class ZkDirectory:
    """The fleet as this agent's ZooKeeper session sees it."""

    def __init__(self, member: FleetMember) -> None:
        self.member = member
        self.client = member.client

    def view(self) -> FleetView:
        from kazoo.exceptions import KazooException, NoNodeError
        from kazoo.handlers.threading import KazooTimeoutError

        try:
            nodes = self.client.zk.get_children(f"{self.client.root}/serverset")
        except NoNodeError:
            nodes = []
        except (KazooException, KazooTimeoutError) as err:
            raise FleetUnreachable(f"ZooKeeper: {err or type(err).__name__}") from None
        leader = self.client.node if self.member.is_leader else self.member.leader.leader()
        return FleetView(frozenset(nodes), leader)

    def endpoint(self, node: str) -> str:
        """`scheme://host:port` of the agent registered as `node`."""
        from kazoo.exceptions import KazooException, NoNodeError
        from kazoo.handlers.threading import KazooTimeoutError

        try:
            data, _ = self.client.zk.get(f"{self.client.root}/serverset/{node}")
        except NoNodeError:
            raise FleetUnreachable(f"{node} left the fleet") from None
        except (KazooException, KazooTimeoutError) as err:
            raise FleetUnreachable(f"ZooKeeper: {err or type(err).__name__}") from None
        return endpoint_url(data)


def endpoint_url(data: bytes) -> str:
    """The URL in a serverset member (`serviceEndpoint` plus the scheme named in `additionalEndpoints`)."""
    try:
        member = json.loads(data)
        host, port = member["serviceEndpoint"]["host"], int(member["serviceEndpoint"]["port"])
        scheme = next(iter(member.get("additionalEndpoints") or {"http": None}))
    except (ValueError, KeyError, TypeError, StopIteration):
        raise FleetUnreachable("the serverset entry is not a serverset member") from None
    if scheme not in ("http", "https") or not isinstance(host, str) or not host:
        raise FleetUnreachable("the serverset entry names no http(s) endpoint")
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"


# The owner answers a short JSON summary per alert; a larger answer is a misbehaving peer.
FORWARD_MAX_BODY = 1 << 20


def forward(
    url: str, payload: dict[str, Any], token: str, hops: int, timeout: float, ca_file: str | None = None
) -> str:
    """POST `payload` to the agent at `url`; returns its answer's summary, raises FleetUnreachable.

    Read through httpread like every answer from another program: `timeout` bounds the whole exchange
    (Alertmanager is waiting on us, and a peer that trickles its answer must not hold the delivery) and
    the answer is capped, so a broken or hostile peer costs a 503 and a retry, never the agent's memory."""
    from gpuwarden.httpread import Limits, ReadError, request

    limits = Limits(
        timeout,
        FORWARD_MAX_BODY,
        follow_redirects=False,  # an agent never redirects: a 3xx is a wrong endpoint, not an answer
        ca_file=ca_file,
        deadline_key="api.forward_timeout_s",
        max_body_key="the cap on an agent's answer",
    )
    headers = {
        "Authorization": f"Bearer {token}",
        HOPS_HEADER: str(hops),
        "Content-Type": "application/json",
    }
    try:
        body = json.dumps(payload).encode()
        reply = request("POST", f"{url}/v1/alerts", limits, headers=headers, body=body)
    except ReadError as err:
        raise FleetUnreachable(f"{url}: {err.kind}: {err.detail}") from None
    if reply.status >= 300:  # a 4xx (a token the owner does not know) will not get better
        retry = reply.status >= 500
        raise FleetUnreachable(f"{url} answered {reply.status}: {_error(reply)}", retry)
    return f"{url} answered {reply.status}"


def _error(reply: Reply) -> str:
    try:
        answer = reply.json()
    except ValueError:
        return reply.text[:200]
    return str(answer.get("error", "") if isinstance(answer, dict) else answer)[:200]
