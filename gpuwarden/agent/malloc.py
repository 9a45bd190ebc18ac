"""glibc's malloc, set for a small long-lived agent (issue 15: RSS measured by `python bench/footprint.py`).

- One arena (M_ARENA_MAX=1). glibc gives threads arenas of their own (up to 8 per core) so that they do
  not wait for each other's allocations; here the GIL already serialises nearly all of them, and every
  arena keeps free pages of its own: 1.9 MB.
- A fixed mmap threshold (M_MMAP_THRESHOLD=128 KiB, glibc's starting value). glibc raises the threshold
  each time a larger block is freed, up to 32 MiB; past that, big short-lived buffers (the gzip of an
  exposition, a JSON answer) are carved from the heap and their pages stay with the process: 0.6 MB.
- `trim()`, every 15 s, hands back the pages that freed memory leaves inside the heap (NVML's
  initialisation, the config's schema building, what collections freed): 1 MB on the H200, ~55 us a call.

A variable already in the environment (MALLOC_ARENA_MAX, MALLOC_MMAP_THRESHOLD_) wins: glibc applied it
at start. Another libc (musl) has none of these calls: nothing happens.
"""

from __future__ import annotations

import functools
import os
from typing import Any

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
M_ARENA_MAX = -8
MMAP_THRESHOLD = 128 * 1024


@functools.cache  # one lookup: trim() runs every 15 s
def _libc() -> Any | None:
    try:
        import ctypes  # here: only the agent needs it (the GPU collector's NVML library loads it anyway)

        libc = ctypes.CDLL(None)
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def tune() -> None:
    """Call before the agent starts its threads (an arena is chosen when a thread first allocates)."""
    libc = _libc()
    if libc is None:
        return
    if "MALLOC_ARENA_MAX" not in os.environ:
        libc.mallopt(M_ARENA_MAX, 1)
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def trim() -> None:
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
