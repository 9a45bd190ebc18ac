"""Read one textfile without letting it hang the collector or grow the agent.

The directory is writable by other programs, so a `*.prom` name may be a FIFO (opening it for reading
blocks until a writer comes), a symlink to /dev/zero or /dev/urandom (never ends), a 100 MB file, or a
file being rewritten in place. Only regular files are opened (checked before opening, and again on the
open descriptor, which is opened non-blocking in case the name was swapped in between); the size is
checked before reading and the read stops one byte past the cap; a file whose size or mtime changes while
it is read is reported rather than served half-written.
"""

from __future__ import annotations

import os
import stat

from gpuwarden.collectors.textfile.validate import Invalid


def read_file(path: str, max_bytes: int) -> tuple[bytes, float] | None:
    """(content, mtime) of the regular file at `path`; None when it vanished; Invalid when unusable."""
    for _ in range(2):  # a writer rewriting in place gets one second chance
        try:
            got = _read_once(path, max_bytes)
        except FileNotFoundError:
            return None  # removed between the listing and now: a writer's rename, not an error
        except OSError as err:
            raise Invalid("unreadable", f"cannot read: {err.strerror or err}") from None
        if got is not None:
            return got
    raise Invalid(
        "changed_while_read",
        "the file changed while it was read; write it under another name and rename it into place",
    )


def _read_once(path: str, max_bytes: int) -> tuple[bytes, float] | None:
    st = os.stat(path)  # follows a symlink: the target is what would be read
    _check(st, max_bytes)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        before = os.fstat(fd)
        _check(before, max_bytes)
        chunks, size = [], 0
        while size <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        after = os.fstat(fd)
    finally:
        os.close(fd)
    if size > max_bytes:
        raise Invalid("too_large", f"more than {max_bytes} bytes (max_file_bytes)")
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns) or size != after.st_size:
        return None
    return b"".join(chunks), after.st_mtime


def _check(st: os.stat_result, max_bytes: int) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise Invalid(
            "not_regular",
            "not a regular file (a FIFO, a character special file or a directory); skipped unread",
        )
    if st.st_size > max_bytes:
        raise Invalid("too_large", f"{st.st_size} bytes, more than {max_bytes} (max_file_bytes)")
