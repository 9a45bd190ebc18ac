"""Probe ZooKeeper servers with four-letter words, each on its own socket, read to EOF.

Why not kazoo's `client.command()`: it reads one `recv(8192)` (a 3.8 `mntr` is about 17 KB, so it is cut
mid-line) and it only reaches the server its session is connected to. The admin guide says each command
goes on a fresh connection and the server closes it after replying, so EOF marks the end of the answer.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from gpuwarden.address import parse_zookeeper
from gpuwarden.collectors.zookeeper.parse import Mode, Reply, ServerStatus, classify

# A 3.8 `mntr` is about 17 KB; a reply far above that is not a 4lw answer (default of max_reply_bytes).
MAX_REPLY_BYTES = 1 << 20


def four_letter(address: str, command: str, timeout: float, max_bytes: int = MAX_REPLY_BYTES) -> Reply:
    """Send `command` on a fresh connection and read until the server closes it.

    `timeout` bounds the whole exchange, so a server trickling its reply cannot hold the probe; a reply
    past `max_bytes` is a BAD_REPLY rather than a truncated answer parsed as if it were whole.
    """
    host, port = parse_zookeeper(address)
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(command.encode("ascii"))
            chunks: list[bytes] = []
            size = 0
            while size <= max_bytes:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                sock.settimeout(left)
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        if size > max_bytes:
            detail = f"{command}: reply larger than {max_bytes} bytes (max_reply_bytes)"
            return Reply(error=Mode.BAD_REPLY, detail=detail)
    except TimeoutError:
        return Reply(error=Mode.TIMEOUT, detail=f"{command}: no complete reply within {timeout:g}s")
    except OSError as err:
        return Reply(error=Mode.UNREACHABLE, detail=f"{command}: {err.strerror or err}")
    return Reply(b"".join(chunks).decode("utf-8", errors="replace"))


def probe_server(address: str, timeout: float, max_bytes: int = MAX_REPLY_BYTES) -> ServerStatus:
    """ruok, srvr, mntr and isro against one server; stops early when it cannot be reached."""
    started = time.monotonic()
    replies: dict[str, Reply] = {}
    for command in ("ruok", "srvr", "mntr", "isro"):
        reply = four_letter(address, command, timeout, max_bytes)
        replies[command] = reply
        if reply.error is not None:
            for rest in ("srvr", "mntr", "isro"):
                replies.setdefault(rest, reply)
            break
    status = classify(address, replies["ruok"], replies["srvr"], replies["mntr"], replies["isro"])
    return replace(status, probe_seconds=time.monotonic() - started)


def probe_all(
    addresses: Sequence[str], timeout: float, max_bytes: int = MAX_REPLY_BYTES
) -> dict[str, ServerStatus]:
    """Probe every server in parallel so one dead host costs one timeout, not one per server."""
    if not addresses:
        return {}
    with ThreadPoolExecutor(max_workers=len(addresses), thread_name_prefix="zk-probe") as pool:
        results = pool.map(lambda a: probe_server(a, timeout, max_bytes), addresses)
        return dict(zip(addresses, results, strict=True))
