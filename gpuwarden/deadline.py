"""The one way to run work under a deadline: collectors, NVML calls, the fleet budget wait, playbook steps.

Python cannot kill a thread, so work that may hang (a driver in D state, a ZooKeeper call queued behind a
partition, a worker that never answers) runs on a daemon thread while the caller waits at most
`timeout_s`. The caller gets its result, its exception, or `DeadlineExceeded`; the thread is abandoned.

`Lane` adds the rule the runner and the NVML thread share: while one job of a lane still hangs, the next
one is refused at once instead of piling a second thread onto the same stuck resource. A hung driver then
costs one thread for the life of the hang, never one per cycle.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class DeadlineExceeded(Exception):
    """`name` did not return within `timeout_s` (or an earlier job of its lane still hangs)."""

    def __init__(
        self, name: str, timeout_s: float, *, since: float | None = None, busy: bool = False
    ) -> None:
        self.name = name
        self.timeout_s = timeout_s
        self.since = time.monotonic() if since is None else since
        self.busy = busy  # refused because an earlier job still runs, not timed out itself
        if busy:
            text = f"{name}: an earlier call has not returned for {time.monotonic() - self.since:.1f}s"
        else:
            text = f"{name}: no answer within {timeout_s:g}s"
        super().__init__(text)


class Interrupted(DeadlineExceeded):
    """The wait was ended early by its `interrupt` event (the work itself may still be running)."""

    def __init__(self, name: str, timeout_s: float) -> None:
        super().__init__(name, timeout_s)
        self.args = (f"{name}: interrupted while waiting",)


def _complete(fn: Callable[[], T], future: Future[T]) -> None:
    try:
        future.set_result(fn())
    except BaseException as err:  # noqa: BLE001 - delivered to the waiting caller, never lost
        future.set_exception(err)


def run_with_deadline(
    fn: Callable[[], T],
    timeout_s: float,
    *,
    name: str,
    on_late: Callable[[T], object] | None = None,
    interrupt: threading.Event | None = None,
) -> T:
    """`fn()` on a fresh daemon thread; its result or exception, or DeadlineExceeded after `timeout_s`.

    `interrupt`, when set by someone else (a connection listener), ends the wait early with
    `Interrupted`. `on_late` receives a result that arrives after the caller gave up, on the worker
    thread, so that something acquired too late (a budget lease) is released instead of leaked."""
    future: Future[T] = Future()
    wake = interrupt if interrupt is not None else threading.Event()
    future.add_done_callback(lambda _: wake.set())
    threading.Thread(target=_complete, args=(fn, future), name=name, daemon=True).start()
    wake.wait(timeout_s)
    if future.done():
        return future.result()
    if on_late is not None:
        future.add_done_callback(lambda f: _late(f, on_late))
    if wake.is_set():
        raise Interrupted(name, timeout_s)
    raise DeadlineExceeded(name, timeout_s)


def _late(future: Future[T], on_late: Callable[[T], object]) -> None:
    if future.exception() is None:
        on_late(future.result())


class _Job:
    """One job of a lane: `fn`'s result or exception, and a lock held until it is done.

    A lock released by the lane's thread is the cheapest handoff there is: a Future's condition variable
    wakes the caller only for it to wait again on the lock the finishing thread still holds (on an H200
    node a round trip cost 33-65 us against 15-19 us for this; bench/gpu.py part 3)."""

    __slots__ = ("_lock", "error", "finished", "fn", "result")

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.result: Any = None
        self.error: BaseException | None = None
        self.finished = False
        self._lock = threading.Lock()
        self._lock.acquire()

    def __call__(self) -> None:  # on the lane's thread
        try:
            self.result = self.fn()
        except BaseException as err:  # noqa: BLE001 - delivered to the waiting caller, never lost
            self.error = err
        finally:
            self.finished = True
            self._lock.release()

    def wait(self, timeout_s: float) -> bool:
        return self._lock.acquire(timeout=timeout_s)


class Lane:
    """One job at a time, each under a deadline; a job started while the previous one hangs is refused.

    `dedicated=True` runs every job on one long-lived thread (NVML wants its calls on one thread);
    otherwise each job gets a fresh daemon thread (a collector)."""

    def __init__(self, name: str, *, dedicated: bool = False) -> None:
        self.name = name
        self._pending: _Job | None = None
        self._pending_name = ""
        self._since = 0.0
        self._jobs: queue.SimpleQueue[_Job | None] | None = None
        if dedicated:
            self._jobs = queue.SimpleQueue()
            threading.Thread(target=self._loop, name=name, daemon=True).start()

    @property
    def hung(self) -> bool:
        return self._pending is not None and not self._pending.finished

    def run(self, fn: Callable[[], T], timeout_s: float, *, name: str | None = None) -> T:
        job_name = name or self.name
        if self.hung:  # the report names the call that hangs, not the one refused
            raise DeadlineExceeded(self._pending_name, timeout_s, since=self._since, busy=True)
        job = _Job(fn)
        self._pending, self._pending_name, self._since = job, job_name, time.monotonic()
        if self._jobs is not None:
            self._jobs.put(job)
        else:
            threading.Thread(target=job, name=job_name, daemon=True).start()
        if not job.wait(timeout_s):
            raise DeadlineExceeded(job_name, timeout_s, since=self._since)
        if job.error is not None:
            raise job.error
        result: T = job.result
        return result

    def stop(self) -> None:
        """End the dedicated thread after its current job (a hung job keeps it: it is a daemon)."""
        if self._jobs is not None:
            self._jobs.put(None)

    def _loop(self) -> None:
        assert self._jobs is not None
        while (job := self._jobs.get()) is not None:
            job()
