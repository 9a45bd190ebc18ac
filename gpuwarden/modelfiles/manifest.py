"""The checksum manifest (`sha256sum`/`md5sum` format), streamed hashing, and hashing only what changed."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MANIFEST = "SHA256SUMS"
ALGORITHMS = {32: "md5", 64: "sha256"}
LINE = re.compile(r"^([0-9a-fA-F]{32}|[0-9a-fA-F]{64}) [ *](.+)$")


class ManifestError(ValueError):
    """A manifest or canary file that is missing, malformed, or a file that does not match its checksum.

    `kind` says which: "missing" or "unreadable" (a file to load is not there, or cannot be stat'ed),
    "invalid" (a manifest or canary that cannot be read or is malformed), "mismatch" (a file not listed in
    the manifest, or whose checksum differs). `file` is the file concerned, when it is one file.
    """

    def __init__(self, message: str, kind: str = "invalid", file: str | None = None) -> None:
        super().__init__(message)
        self.kind, self.file = kind, file


# -- the manifest -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    path: str  # as written in the manifest, relative to its directory
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
        m = LINE.match(line)
        if m is None:
            raise ManifestError(f"line {lineno}: expected '<md5 or sha256 hex>  <path>', got {line[:80]!r}")
        digest, path = m.group(1).lower(), m.group(2)
        if os.path.isabs(path) or ".." in path.split("/"):
            raise ManifestError(f"line {lineno}: path {path!r} must stay inside the manifest's directory")
        entries.append(Entry(path=path, algorithm=ALGORITHMS[len(digest)], digest=digest))
    if not entries:
        raise ManifestError("no entries")
    return entries


def read_manifest(manifest_path: str) -> list[Entry]:
    try:
        with open(manifest_path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) else "not UTF-8 text"
        raise ManifestError(f"cannot read {os.path.basename(manifest_path)}: {reason}") from None
    try:
        return parse_manifest(text)
    except ManifestError as err:
        raise ManifestError(f"{os.path.basename(manifest_path)}: {err}") from None


class _Counting(io.RawIOBase):
    """A file that reports each chunk it hands to hashlib.file_digest (for the doctor's progress bar)."""

    def __init__(self, f: io.RawIOBase, progress: Callable[[int], object]) -> None:
        self.f, self.progress = f, progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        n = self.f.readinto(buffer)
        if n:
            self.progress(n)
        return n


def file_digest(path: str, algorithm: str, progress: Callable[[int], object] | None = None) -> str:
    """Hex digest, streamed in fixed chunks (hashlib.file_digest): a 100 GB shard never sits in memory."""
    # hashlib here, not at the top: it loads OpenSSL's libcrypto (3.5 MB, gpuwarden/deferred.py), and the
    # agent's doctor imports this module whether or not a model directory is configured.
    import hashlib

    with open(path, "rb", buffering=0) as f:
        source: Any = f if progress is None else _Counting(f, progress)
        return hashlib.file_digest(source, algorithm).hexdigest()


def sha256_file(path: str) -> str:
    return file_digest(path, "sha256")


def verify_manifest(manifest_path: str, show_progress: bool = False) -> tuple[int, list[Mismatch]]:
    """Every file of a manifest: (files checked, problems). ManifestError when the manifest is unusable."""
    entries = read_manifest(manifest_path)
    base = os.path.dirname(manifest_path)
    full = {e.path: os.path.join(base, e.path) for e in entries}
    total = sum(os.path.getsize(p) for p in full.values() if os.path.isfile(p))
    from tqdm import tqdm  # a progress bar only on a terminal: tqdm writes nothing when disabled

    problems = []
    with tqdm(total=total, unit="B", unit_scale=True, desc="checksums", disable=not show_progress) as bar:
        for e in entries:
            if not os.path.isfile(full[e.path]):
                problems.append(Mismatch(e.path, "missing"))
                continue
            try:
                actual = file_digest(full[e.path], e.algorithm, bar.update)
            except OSError as err:
                problems.append(Mismatch(e.path, f"unreadable: {err.strerror}"))
                continue
            if actual != e.digest:
                problems.append(Mismatch(e.path, f"{e.algorithm} differs"))
    return len(entries), problems


def verify_files(directory: str, names: list[str]) -> None:
    """Raise ManifestError unless every file in `names` is listed in SHA256SUMS and matches it."""
    listed = {e.path: e for e in read_manifest(os.path.join(directory, MANIFEST))}
    for name in names:
        entry = listed.get(name)
        if entry is None:
            raise ManifestError(f"{name} is not listed in {MANIFEST}", "mismatch")
        try:
            actual = file_digest(os.path.join(directory, name), entry.algorithm)
        except OSError as err:
            raise ManifestError(f"cannot read {name}: {err.strerror}") from None
        if actual != entry.digest:
            raise ManifestError(
                f"{name} checksum mismatch: {MANIFEST} says {entry.digest[:12]}…, file is {actual[:12]}…",
                "mismatch",
            )


def write_manifest(directory: str, names: list[str]) -> None:
    lines = [f"{sha256_file(os.path.join(directory, name))}  {name}\n" for name in sorted(names)]
    atomic_write(os.path.join(directory, MANIFEST), "".join(lines))


# -- hashing only what changed ------------------------------------------------------------------------
Stamp = tuple[int, int, int]  # (st_ino, st_size, st_mtime_ns)


class StampedFiles:
    """Files verified against SHA256SUMS on first use and again only when one's inode, size or mtime
    changes (a redeploy, a partial copy, an editor): hashing a multi-gigabyte plan every probe would cost
    more than the probe, and a stat() is microseconds."""

    def __init__(self, directory: str, names: list[str], verify: bool) -> None:
        self.directory, self.names, self.verify = directory, names, verify
        self._stamps: dict[str, Stamp] | None = None

    def path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def _stamp_all(self) -> dict[str, Stamp]:
        stamps: dict[str, Stamp] = {}
        for name in [*self.names, MANIFEST] if self.verify else self.names:
            try:
                st = os.stat(self.path(name))
            except FileNotFoundError:
                raise ManifestError(f"{self.path(name)} does not exist", "missing", name) from None
            except OSError as err:
                raise ManifestError(
                    f"cannot stat {self.path(name)}: {err.strerror}", "unreadable", name
                ) from None
            stamps[name] = (st.st_ino, st.st_size, st.st_mtime_ns)
        return stamps

    def refresh(self) -> bool:
        """True when the files are new or changed (and now verified); ManifestError when they are bad."""
        stamps = self._stamp_all()
        if stamps == self._stamps:
            return False
        self._stamps = None  # a failed verification is retried next time, not remembered as good
        if self.verify:
            verify_files(self.directory, self.names)
        self._stamps = stamps
        return True


def atomic_write(path: str, text: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
