"""Model files verified against SHA256SUMS before they are loaded, and re-verified when they change.

Hashing a multi-gigabyte plan every 30 seconds would cost more than the probe, so the files are hashed on
first use and again only when a file's size, mtime or inode changes (a redeploy, a partial copy, an
editor); the stat() per probe is microseconds.
"""

from __future__ import annotations

import os

from gpuwarden.collectors.engine.probe import ProbeFailure
from gpuwarden.worker import manifest
from gpuwarden.worker.manifest import Canary, ManifestError

Stamp = tuple[int, int, int]  # (st_ino, st_size, st_mtime_ns)


class ModelFiles:
    def __init__(self, directory: str, names: list[str], verify: bool) -> None:
        self.directory = directory
        self.names = names
        self.verify = verify
        self._stamps: dict[str, Stamp] | None = None

    def path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def _stamp_all(self) -> dict[str, Stamp]:
        stamps: dict[str, Stamp] = {}
        for name in [*self.names, manifest.MANIFEST] if self.verify else self.names:
            try:
                st = os.stat(self.path(name))
            except FileNotFoundError:
                reason = "missing_plan" if name.endswith((".plan", ".engine")) else "model_invalid"
                raise ProbeFailure(reason, f"{self.path(name)} does not exist") from None
            except OSError as err:
                raise ProbeFailure(
                    "model_invalid", f"cannot stat {self.path(name)}: {err.strerror}"
                ) from None
            stamps[name] = (st.st_ino, st.st_size, st.st_mtime_ns)
        return stamps

    def refresh(self) -> bool:
        """True when the files are new or changed (and now verified); ProbeFailure when they are bad."""
        stamps = self._stamp_all()
        if stamps == self._stamps:
            return False
        self._stamps = None  # a failed verification is retried on the next probe, not remembered as good
        if self.verify:
            try:
                manifest.verify(self.directory, self.names)
            except ManifestError as err:
                raise ProbeFailure("checksum_mismatch", f"{self.directory}: {err}") from None
        self._stamps = stamps
        return True

    def load_canary(self) -> Canary:
        try:
            return manifest.load_canary(self.path(manifest.CANARY))
        except ManifestError as err:
            raise ProbeFailure("model_invalid", str(err)) from None
