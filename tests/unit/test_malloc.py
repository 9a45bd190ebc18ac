"""gpuwarden.agent.malloc: the agent's threads share one glibc arena (glibc's own malloc_info says so)."""

from __future__ import annotations

import os
import subprocess
import sys

# Threads that allocate at the same time, then glibc's count of arenas (one <heap> each in malloc_info).
PROGRAM = """
import ctypes, re, sys, threading
from gpuwarden.agent import malloc
if sys.argv[1] == "tuned":
    malloc.tune()
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
barrier = threading.Barrier(8)
def work():
    barrier.wait()
    for _ in range(200):
        libc.free(libc.malloc(4096))  # through glibc, as NVML and the C parts of libraries allocate
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
malloc.trim()
buf, size = ctypes.c_char_p(), ctypes.c_size_t()
libc.open_memstream.restype = ctypes.c_void_p
stream = libc.open_memstream(ctypes.byref(buf), ctypes.byref(size))
libc.malloc_info(0, ctypes.c_void_p(stream))
libc.fclose(ctypes.c_void_p(stream))
print(len(re.findall(r'<heap nr="', buf.value.decode())))
"""


def arenas(mode: str, **env: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM, mode],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env,
    )
    return int(out.stdout)


def test_tuned_threads_share_one_arena_and_the_environment_still_wins() -> None:
    assert arenas("default") > 1  # the control: glibc gives concurrent threads arenas of their own
    assert arenas("tuned") == 1
    assert arenas("tuned", MALLOC_ARENA_MAX="4") > 1  # an operator's setting is left alone
