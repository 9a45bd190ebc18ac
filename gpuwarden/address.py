"""The one `host:port` parser: the agent's listen address, the ZooKeeper servers, the worker's --listen.

`HOST:PORT`, or `[V6ADDR]:PORT` for IPv6 (as URLs write it). Where a default port exists (ZooKeeper's
2181), the port may be left out. Errors are ValueErrors whose text reads well after a key path.
"""

from __future__ import annotations

import ipaddress

ZOOKEEPER_PORT = 2181  # ZooKeeper's default clientPort (zookeeper.apache.org, Administrator's Guide)
SHAPE = "must be HOST:PORT (IPv6 as [ADDR]:PORT)"


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def parse_address(text: str, *, default_port: int | None = None, min_port: int = 1) -> tuple[str, int]:
    """`text` → (host, port); the brackets of an IPv6 address are removed. Raises ValueError."""
    if text.startswith("["):
        inside, bracket, rest = text[1:].partition("]")
        if not bracket or not _is_ipv6(inside) or (rest and not rest.startswith(":")):
            raise ValueError(SHAPE)
        host, port_text = inside, rest[1:] if rest else None
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    elif ":" in text:
        if default_port is None or not _is_ipv6(text):
            raise ValueError("an IPv6 address must be written in brackets: [ADDR]:PORT")
        host, port_text = text, None  # a bare IPv6 address where the port has a default
    else:
        host, port_text = text, None
    if not host or host != host.strip():
        raise ValueError(SHAPE)
    if port_text is None:
        if default_port is None:
            raise ValueError(SHAPE)
        return host, default_port
    if not (port_text.isascii() and port_text.isdigit()) or not min_port <= int(port_text) <= 65535:
        raise ValueError(f"port must be a number from {min_port} to 65535")
    return host, int(port_text)


def parse_listen(text: str) -> tuple[str, int]:
    """Where a server listens: the port is required, and 0 asks the kernel for a free one."""
    return parse_address(text, min_port=0)


def check_listen(text: str) -> str:
    """Pydantic validator form of `parse_listen`."""
    parse_listen(text)
    return text


def parse_zookeeper(text: str) -> tuple[str, int]:
    """A ZooKeeper server: `host:port`, or `host` for port 2181."""
    try:
        return parse_address(text, default_port=ZOOKEEPER_PORT)
    except ValueError as err:
        raise ValueError(f"{text!r}: {err}") from None


def check_zookeeper(text: str) -> str:
    """Pydantic validator form of `parse_zookeeper`."""
    parse_zookeeper(text)
    return text
