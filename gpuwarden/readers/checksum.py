"""Model weight files against a checksum manifest, streamed so a 100 GB shard never sits in memory.

The manifest is what `sha256sum` or `md5sum` print (`<hex>  <path>`, `*` before the path in binary
mode); the hash length picks the algorithm (32 hex digits MD5, 64 SHA-256). Paths are relative to the
manifest's directory. A file is read in 1 MiB chunks into one reused buffer, so peak memory stays flat
whatever the file size.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass

CHUNK = 1 << 20
ALGORITHMS = {32: "md5", 64: "sha256"}
LINE = re.compile(r"^([0-9a-fA-F]{32}|[0-9a-fA-F]{64}) [ *](.+)$")


class ManifestError(ValueError):
    """The manifest cannot be read or has a line that is not `<hex>  <path>`."""


@dataclass(frozen=True)
class Entry:
    path: str  # as written in the manifest
    algorithm: str
    digest: str


@dataclass(frozen=True)
class Mismatch:
    path: str
    problem: str  # "missing", "unreadable: ...", or "sha256 differs"


def parse_manifest(text: str) -> list[Entry]:
    entries = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = LINE.match(line.rstrip("\n"))
        if m is None:
            raise ManifestError(f"line {lineno}: expected '<md5 or sha256 hex>  <path>', got {line[:80]!r}")
        digest, path = m.group(1).lower(), m.group(2)
        if os.path.isabs(path) or ".." in path.split("/"):
            raise ManifestError(f"line {lineno}: path {path!r} must stay inside the manifest's directory")
        entries.append(Entry(path=path, algorithm=ALGORITHMS[len(digest)], digest=digest))
    if not entries:
        raise ManifestError("no entries")
    return entries


def file_digest(path: str, algorithm: str, progress: Callable[[int], object] | None = None) -> str:
    h = hashlib.new(algorithm)
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
            if progress is not None:
                progress(n)
    return h.hexdigest()


def verify(manifest_path: str, show_progress: bool = False) -> tuple[int, list[Mismatch]]:
    """(files checked, problems). Raises ManifestError when the manifest itself is unusable."""
    try:
        with open(manifest_path, encoding="utf-8") as f:
            entries = parse_manifest(f.read())
    except OSError as err:
        raise ManifestError(f"cannot read {manifest_path}: {err.strerror}") from None
    base = os.path.dirname(manifest_path)
    sizes = {}
    for e in entries:
        try:
            sizes[e.path] = os.path.getsize(os.path.join(base, e.path))
        except OSError:
            sizes[e.path] = 0
    from tqdm import tqdm  # a progress bar only on a terminal: tqdm writes nothing when disabled

    problems = []
    with tqdm(
        total=sum(sizes.values()), unit="B", unit_scale=True, desc="checksums", disable=not show_progress
    ) as bar:
        for e in entries:
            full = os.path.join(base, e.path)
            if not os.path.isfile(full):
                problems.append(Mismatch(e.path, "missing"))
                continue
            try:
                actual = file_digest(full, e.algorithm, bar.update)
            except OSError as err:
                problems.append(Mismatch(e.path, f"unreadable: {err.strerror}"))
                continue
            if actual != e.digest:
                problems.append(Mismatch(e.path, f"{e.algorithm} differs"))
    return len(entries), problems
