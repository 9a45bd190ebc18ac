"""`host:port` parsing shared by the fleet config and the ZooKeeper checker (no other imports)."""

from __future__ import annotations


def split_address(address: str, default_port: int = 2181) -> tuple[str, int]:
    """`host:port`, `host` or `[v6]:port` → (host, port). Raises ValueError with a readable reason."""
    host, sep, port = address.rpartition(":")
    if not sep or (host.count(":") and not host.startswith("[")):
        host, port = address, str(default_port)
    host = host.removeprefix("[").removesuffix("]")
    if not host:
        raise ValueError(f"{address!r}: missing host")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{address!r}: port must be a number from 1 to 65535")
    return host, int(port)


def check_address(address: str) -> str:
    """Pydantic validator form of `split_address`."""
    split_address(address)
    return address
