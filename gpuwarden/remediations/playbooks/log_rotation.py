"""`log_rotation`: rotate the worker's log files by size and age, compress, keep N, without losing a line.

Rename, then make the writer reopen: renaming keeps the inode, so a line written between the rename and
the reopen lands in `<file>.1`, never nowhere. Two ways the writer learns:

- `signal` (nginx, the reference worker, most daemons): the target is sent `signal` (SIGHUP by default;
  a systemd unit through `systemctl kill --kill-whom=main`), and the step waits until the writer has
  created the file again, which proves it let go of the old one;
- `watch`: writers that re-check the path before each write (Python's WatchedFileHandler, rsyslog's
  `reopenOnTruncate`-free imfile): nothing to send; the file reappears with the next line.

Only a file the writer provably let go of is compressed (gzip to a temporary file, fsync, rename), so a
late line is never written into a file that is about to be deleted; a `watch` writer that stayed idle
keeps `<file>.1` plain until the next rotation (logrotate's `delaycompress`).

Not offered: copytruncate. Copying and then truncating loses every line written between the copy and
the truncate (logrotate's manual says so), and a writer without O_APPEND then writes at its old offset,
leaving a hole of NUL bytes. A writer that can do neither (a process target's inherited stdout) should
log to its own file or to the journal instead. Runbook: docs/runbooks/log_rotation.md.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import time
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from gpuwarden.remediations.registry import Check, Plan, PlaybookContext, Step, register_playbook
from gpuwarden.remediations.request import Request
from gpuwarden.remediations.settings import PlaybookSettings
from gpuwarden.remediations.targets import TargetError, write_atomic


class LogRotationSettings(PlaybookSettings):
    files: list[str] = Field(
        default_factory=list, description="log files to rotate; empty: the target's `log_file`"
    )
    max_bytes: int = Field(256 * 2**20, ge=1, description="rotate a file larger than this")
    max_age_s: float = Field(86400.0, gt=0, description="rotate a file last rotated longer ago than this")
    keep: int = Field(7, ge=1, description="rotated files kept (`<file>.1[.gz]` ... `<file>.N[.gz]`)")
    compress: bool = Field(True, description="gzip rotated files once the writer has let go of them")
    reopen: Literal["signal", "watch"] = Field(
        "signal", description="how the writer reopens: sent `signal`, or it watches the path itself"
    )
    signal: Literal["HUP", "USR1", "USR2"] = Field("HUP", description="the writer's reopen signal")
    reopen_timeout_s: float = Field(10.0, gt=0, description="how long the writer may take to reopen")
    state_file: str = Field(
        "/var/lib/gpuwarden/remediation/log_rotation.json",
        description="when each file was last rotated (for `max_age_s`, across agent restarts)",
    )


def rotated(path: str, n: int) -> Path | None:
    """`<path>.n.gz` or `<path>.n`, whichever exists."""
    for candidate in (Path(f"{path}.{n}.gz"), Path(f"{path}.{n}")):
        if candidate.exists():
            return candidate
    return None


def shift(path: str, keep: int) -> None:
    """`<path>.N` → `<path>.N+1` (the oldest beyond `keep` is deleted), then `<path>` → `<path>.1`."""
    oldest = rotated(path, keep)
    if oldest is not None:
        oldest.unlink()
    for n in range(keep - 1, 0, -1):
        old = rotated(path, n)
        if old is not None:
            old.rename(str(old).replace(f"{path}.{n}", f"{path}.{n + 1}", 1))
    os.rename(path, f"{path}.1")


def compress(plain: Path) -> Path:
    """gzip `plain` next to itself: temporary file, fsync, rename, then delete the original."""
    final = plain.with_name(plain.name + ".gz")
    tmp = plain.with_name(plain.name + ".gz.tmp")
    with open(plain, "rb") as src, gzip.open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, final)
    plain.unlink()
    return final


@register_playbook("log_rotation", LogRotationSettings)
class LogRotation:
    name = "log_rotation"

    def __init__(self, settings: LogRotationSettings, ctx: PlaybookContext) -> None:
        self.settings = settings
        self.ctx = ctx
        self._reopened: set[str] = set()

    def files(self) -> list[str]:
        log_file = self.ctx.target.log_file
        return list(self.settings.files) or ([log_file] if log_file else [])

    def _state(self) -> dict[str, float]:
        try:
            return dict(json.loads(Path(self.settings.state_file).read_text(encoding="utf-8")))
        except (FileNotFoundError, ValueError):
            return {}

    def due(self, request: Request, first_sight: bool = False) -> list[tuple[str, str]]:
        """(file, why) for each file to rotate now. Disk pressure and people rotate any non-empty file.
        With `first_sight`, a file never seen before starts its age clock now (the state file)."""
        state, now, out = self._state(), time.time(), []
        for path in self.files():
            try:
                size = os.stat(path).st_size
            except FileNotFoundError:
                continue
            if size == 0:
                continue
            if request.source != "schedule":
                out.append((path, f"{request.source} request"))
            elif size > self.settings.max_bytes:
                out.append((path, f"{size} bytes > {self.settings.max_bytes}"))
            elif now - state.setdefault(path, now) > self.settings.max_age_s:
                out.append((path, f"last rotated {now - state[path]:.0f}s ago"))
        if first_sight and state != self._state():
            write_atomic(self.settings.state_file, json.dumps(state))  # first sight starts the age clock
        return out

    def still_needed(self, request: Request) -> Check:
        due = self.due(request, first_sight=True)
        if not due:
            return Check(False, "no log file is due for rotation")
        return Check(True, "; ".join(f"{p}: {why}" for p, why in due))

    def plan(self, request: Request) -> Plan:
        paths = [p for p, _ in self.due(request)]
        if not paths:
            return Plan()
        s = self.settings
        steps = [Step("rotate", f"{p} → {p}.1 (keep {s.keep})", partial(self._rotate, p)) for p in paths]
        how = f"send SIG{s.signal} to {self.ctx.target.name}" if s.reopen == "signal" else "writer watches"
        steps.append(
            Step(
                "reopen",
                f"{how}; wait up to {s.reopen_timeout_s:g}s for it to reopen",
                lambda: self._reopen(paths),
            )
        )
        if s.compress:
            steps.append(
                Step(
                    "compress",
                    "gzip the rotated files the writer has let go of",
                    lambda: self._compress(paths),
                )
            )
        return Plan(tuple(steps))

    def _rotate(self, path: str) -> None:
        shift(path, self.settings.keep)
        state = self._state()
        state[path] = time.time()
        write_atomic(self.settings.state_file, json.dumps(state))

    def _reopen(self, paths: list[str]) -> None:
        s = self.settings
        if s.reopen == "signal":
            self.ctx.target.signal(getattr(signal, f"SIG{s.signal}"))
        deadline = time.monotonic() + s.reopen_timeout_s
        while time.monotonic() < deadline and not all(os.path.exists(p) for p in paths):
            time.sleep(0.02)
        self._reopened = {p for p in paths if os.path.exists(p)}
        missing = sorted(set(paths) - self._reopened)
        if missing and s.reopen == "signal":
            raise TargetError(
                f"the writer did not reopen {', '.join(missing)} within {s.reopen_timeout_s:g}s after "
                f"SIG{s.signal}: its lines go on to <file>.1, which stays uncompressed"
            )

    def _compress(self, paths: list[str]) -> None:
        for path in paths:
            first = 1 if path in self._reopened else 2  # an idle `watch` writer may still hold .1
            for n in range(first, self.settings.keep + 1):
                plain = Path(f"{path}.{n}")
                if plain.exists():
                    compress(plain)

    def verify(self) -> Check:
        over = [p for p in self.files() if rotated(p, self.settings.keep + 1) is not None]
        if over:
            return Check(False, f"more than {self.settings.keep} rotated files of {', '.join(over)}")
        return Check(True, f"rotated; at most {self.settings.keep} kept per file")

    def evidence(self) -> Mapping[str, Any]:
        sizes: dict[str, int | None] = {}
        for path in self.files():
            try:
                sizes[path] = os.stat(path).st_size
            except OSError:
                sizes[path] = None
        return {"sizes": sizes, "last_rotated": self._state()}
