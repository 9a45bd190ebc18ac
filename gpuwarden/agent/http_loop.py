"""The HTTP server: one I/O thread and a fixed pool of handler threads, whatever clients do.

Why not `http.server`: it gives every connection a thread (400 idle clients took all of systemd's
TasksMax=256) and, with TLS, handshakes inside `accept()` on its only serving thread (one client that
never sends a byte stalls every scrape). cheroot handshakes on its accept thread too, and waitress has no
TLS; docs/operations.md has the measurements. Here one thread owns every socket, non-blocking, through a
selector: it accepts, runs each TLS handshake step as bytes arrive, reads request heads and bodies, and
writes responses. A connection costs a socket and a few hundred bytes, never a thread, so idle, slow and
half-handshaken clients cannot starve anyone; each has a deadline. Only complete requests reach the
handler threads (or run inline on the I/O thread when the route says they are quick). The handler threads
start with the first request that needs one: the default routes are all inline, so an agent without the
/v1 API runs none (each thread costs memory: bench/footprint.py).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import queue
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl

from gpuwarden.agent.http import (
    Headers,
    HTTPError,
    Limits,
    Request,
    Response,
    Route,
    Router,
    Stats,
    error_response,
)
from gpuwarden.agent.http_conn import (
    CLOSED,
    HANDLING,
    HANDSHAKE,
    IDLE,
    LINGER,
    READING,
    WRITING,
    Conn,
    encode_response,
)

TICK = 0.25  # how often deadlines are checked
LINGER_S = 2.0  # after refusing a request, drain what the client still sends so it can read our answer
LINGER_BYTES = 1 << 20  # ... or this much of it
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class _NeverRaised(OSError):
    """Stands in for ssl.SSLWantReadError and SSLWantWriteError in a server without TLS."""


Observer = Callable[[str, str, int], None]  # (method, route pattern or "none", status) per response


class Server:
    def __init__(
        self,
        host: str,
        port: int,
        router: Router,
        limits: Limits,
        log: logging.Logger,
        tls: ssl.SSLContext | None = None,
        stats: Stats | None = None,
        observe: Observer | None = None,
    ) -> None:
        self.router, self.limits, self.log, self.tls = router, limits, log, tls
        # ssl's errors, as the except clauses below name them; ssl itself is imported only with a TLS
        # context (bench/footprint.py): without one no socket can raise them.
        self._want_read: type[OSError] = _NeverRaised
        self._want_write: type[OSError] = _NeverRaised
        if tls is not None:
            import ssl

            self._want_read, self._want_write = ssl.SSLWantReadError, ssl.SSLWantWriteError
        self.stats = stats or Stats()
        self.stats.max_connections = limits.max_connections
        self.observe = observe
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._listener.bind((host, port))
            self._listener.listen(limits.backlog)
        except OSError:
            self._listener.close()
            raise
        self._listener.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._conns: set[Conn] = set()
        self._idle: dict[Conn, None] = {}  # evictable connections, oldest first
        self._jobs: queue.SimpleQueue[tuple[Conn, Route, Request] | None] = queue.SimpleQueue()
        self._done: deque[tuple[Conn, Route, Request, Response]] = deque()
        self._pipelined: deque[Conn] = deque()  # idle again with the next request already buffered
        self._stopping = False
        self._accept_paused_until = 0.0
        self._io = threading.Thread(target=self._loop, name="http-io", daemon=True)
        self._workers = [
            threading.Thread(target=self._work, name=f"http-{i}", daemon=True)
            for i in range(limits.handler_threads)
        ]
        self._workers_started = False  # set and read on the I/O thread only

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._selector.register(self._wake_r, selectors.EVENT_READ, self._wake_r)
        self._io.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Close the listener and every connection; a handler still running is abandoned, not awaited."""
        self._stopping = True
        self._wake()
        if self._io.is_alive():
            self._io.join(timeout)
        self._listener.close()  # now, even if the I/O thread is slow to see it: a reload binds the port again
        for _ in self._workers if self._workers_started else ():
            self._jobs.put(None)

    # -- the I/O thread ------------------------------------------------------------------------------
    def _loop(self) -> None:
        next_sweep = time.monotonic() + TICK
        try:
            while not self._stopping:
                for key, events in self._selector.select(TICK):
                    if key.data is None:
                        self._accept()
                    elif key.data is self._wake_r:
                        self._drain_wake()
                    else:
                        self._guarded(key.data, self._on_ready, events)
                self._finish_done()
                while self._pipelined:
                    conn = self._pipelined.popleft()
                    if conn.state == IDLE:
                        self._guarded(conn, lambda c, _: self._advance(c), 0)
                now = time.monotonic()
                if now >= next_sweep:
                    self._sweep(now)
                    next_sweep = now + TICK
        except Exception:  # a bug here must not leave a silent dead port behind
            self.log.exception("HTTP server stopped by an internal error")
        finally:
            for conn in list(self._conns):
                self._close(conn)
            self._selector.close()
            self._listener.close()
            self._wake_r.close()
            self._wake_w.close()

    def _guarded(self, conn: Conn, step: Callable[[Conn, int], None], events: int) -> None:
        """A bug met while serving one connection closes that connection, not the server."""
        try:
            step(conn, events)
        except Exception:
            self.log.exception("HTTP connection from %s failed", conn.peer)
            self._close(conn)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full (a wake-up is already pending) or closed (stopping)
            self._wake_w.send(b"x")

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass

    def _accept(self) -> None:
        if time.monotonic() < self._accept_paused_until:
            return
        for _ in range(64):  # a batch per wake-up, so reads and writes are not starved by a SYN flood
            try:
                raw, addr = self._listener.accept()
            except BlockingIOError:
                return
            except OSError as err:  # out of descriptors or memory: free one and retry shortly
                if err.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self.stats.count("connection_limit")
                    if not self._evict_idle():
                        self._accept_paused_until = time.monotonic() + 0.1
                return
            if len(self._conns) >= self.limits.max_connections and not self._evict_idle():
                raw.close()
                self.stats.count("connection_limit")
                continue
            raw.setblocking(False)
            if raw.family != socket.AF_UNIX:
                # Head and body go out in one write, but a TLS record split would still meet Nagle against
                # the client's delayed ACK (40 ms per keep-alive scrape).
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            peer = f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) else str(addr)
            now = time.monotonic()
            if self.tls is not None:
                sock = self.tls.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
                conn = Conn(sock, peer, HANDSHAKE, now + self.limits.handshake_timeout)
            else:
                conn = Conn(raw, peer, IDLE, now + self.limits.idle_timeout)
            self._conns.add(conn)
            self._idle[conn] = None
            self.stats.connections = len(self._conns)
            self._watch(conn, selectors.EVENT_READ)

    def _evict_idle(self) -> bool:
        """Close the longest-idle connection to make room: a new client beats one that sends nothing."""
        for conn in self._idle:
            self._close(conn, "connection_limit")
            return True
        return False

    def _watch(self, conn: Conn, events: int) -> None:
        if events == conn.events:
            return
        if not events:
            self._selector.unregister(conn.sock)
        elif not conn.events:
            self._selector.register(conn.sock, events, conn)
        else:
            self._selector.modify(conn.sock, events, conn)
        conn.events = events

    def _close(self, conn: Conn, reason: str | None = None) -> None:
        if conn.state == CLOSED:
            return
        if reason:
            self.stats.count(reason)
        self._watch(conn, 0)
        conn.state = CLOSED
        self._conns.discard(conn)
        self._idle.pop(conn, None)
        self.stats.connections = len(self._conns)
        with contextlib.suppress(OSError):
            conn.sock.close()

    def _sweep(self, now: float) -> None:
        reasons = {
            HANDSHAKE: "handshake_timeout",
            READING: "request_timeout",
            WRITING: "write_timeout",
        }
        for conn in [c for c in self._conns if c.deadline <= now]:
            self._close(conn, reasons.get(conn.state))  # IDLE and LINGER end quietly

    def _on_ready(self, conn: Conn, events: int) -> None:
        if conn.state == HANDSHAKE:
            self._handshake(conn)
        elif conn.state in (IDLE, READING, LINGER):
            self._read(conn)
        elif conn.state == WRITING:
            self._write(conn)

    def _handshake(self, conn: Conn) -> None:
        try:
            conn.sock.do_handshake()  # type: ignore[attr-defined]
        except self._want_read:
            self._watch(conn, selectors.EVENT_READ)
            return
        except self._want_write:
            self._watch(conn, selectors.EVENT_WRITE)
            return
        except OSError:  # ssl.SSLError included
            self._close(conn, "handshake_failed")
            return
        conn.state, conn.deadline = IDLE, time.monotonic() + self.limits.idle_timeout
        self._watch(conn, selectors.EVENT_READ)
        self._read(conn)  # the first request may already sit in the TLS buffer

    def _read(self, conn: Conn) -> None:
        while True:  # one chunk per wake-up, so one fast sender cannot monopolise the I/O thread
            try:
                chunk = conn.sock.recv(65536)
            except (BlockingIOError, self._want_read, self._want_write):
                break
            except OSError:  # includes SSLError: a reset or a broken TLS stream
                self._close(conn, None if conn.state in (IDLE, LINGER) else "reset")
                return
            if not chunk:
                self._close(conn, "reset" if conn.state == READING else None)
                return
            if conn.state == LINGER:
                conn.discarded += len(chunk)
                if conn.discarded > LINGER_BYTES:
                    self._close(conn)
                return
            conn.buf += chunk
            # Read on only while a TLS record still holds decrypted bytes the selector cannot see.
            if not (self.tls is not None and conn.sock.pending()):  # type: ignore[attr-defined]
                break
        if conn.state in (IDLE, READING):
            self._advance(conn)

    def _advance(self, conn: Conn) -> None:
        """Parse what has arrived; dispatch a request once it is complete."""
        if conn.state == IDLE and conn.buf:
            self._idle.pop(conn, None)
            conn.state, conn.deadline = READING, time.monotonic() + self.limits.request_timeout
        try:
            taken = conn.take_request(self.router, self.limits)
        except HTTPError as err:
            self._refuse(conn, err)
            return
        if conn.wants_continue:
            conn.wants_continue = False
            with contextlib.suppress(OSError):  # the client sends the body after a while anyway
                conn.sock.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        if taken is None:
            return
        route, request = taken
        conn.state, conn.deadline = HANDLING, float("inf")
        if route.inline:  # answered now: the selector registration stays as it is (no syscalls)
            self._respond(conn, route, request, self._call(route, request))
        else:
            self._watch(conn, 0)  # pipelined bytes wait in the kernel until this answer is out
            if not self._workers_started:  # the first request for a handler thread starts the pool
                self._workers_started = True
                for worker in self._workers:
                    worker.start()
            self._jobs.put((conn, route, request))

    def _refuse(self, conn: Conn, err: HTTPError) -> None:
        """Answer a request the layer will not serve, then close: its body was not read."""
        self.stats.count(err.reason)
        method = bytes(conn.buf[: conn.buf.find(b" ")]).decode("latin-1")
        request = Request(method, "", {}, Headers(), b"", conn.peer)
        conn.buf.clear()
        conn.refused = True
        self._respond(conn, None, request, error_response(err.status, err.message), close=True)

    # -- handlers ------------------------------------------------------------------------------------
    def _call(self, route: Route, request: Request) -> Response:
        try:
            return route.handler(request)
        except Exception:  # a handler bug: the client gets a JSON 500, the log gets the traceback
            self.log.exception("handler for %s %s failed", request.method, route.path_pattern)
            return error_response(500, "internal error")

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            conn, route, request = job
            self._done.append((conn, route, request, self._call(route, request)))
            self._wake()

    def _finish_done(self) -> None:
        while self._done:
            conn, route, request, response = self._done.popleft()
            if conn.state == HANDLING:
                self._respond(conn, route, request, response)

    # -- writing -------------------------------------------------------------------------------------
    def _respond(
        self, conn: Conn, route: Route | None, request: Request, response: Response, close: bool = False
    ) -> None:
        keep = not close and not self._stopping and conn.head is not None and conn.head.keep_alive
        conn.out = memoryview(encode_response(response, request.method, conn.head, keep))
        conn.keep_alive, conn.state = keep, WRITING
        conn.deadline = time.monotonic() + self.limits.write_timeout
        if self.observe is not None:
            method = request.method if request.method in KNOWN_METHODS else "other"
            self.observe(method, route.path_pattern if route else "none", response.status)
        self._write(conn)

    def _write(self, conn: Conn) -> None:
        while conn.out:
            try:
                sent = conn.sock.send(conn.out)
            except (BlockingIOError, self._want_write):
                self._watch(conn, selectors.EVENT_WRITE)
                return
            except self._want_read:
                self._watch(conn, selectors.EVENT_READ)
                return
            except OSError:
                self._close(conn, "reset")
                return
            conn.out = conn.out[sent:]
        if conn.keep_alive:
            conn.state, conn.deadline = IDLE, time.monotonic() + self.limits.idle_timeout
            conn.head = conn.route = None
            self._idle[conn] = None
            self._watch(conn, selectors.EVENT_READ)
            if conn.buf:
                self._pipelined.append(conn)  # parsed by the loop: no recursion through pipelined requests
        elif conn.refused:
            self._linger(conn)
        else:
            self._close(conn)

    def _linger(self, conn: Conn) -> None:
        """Half-close and discard what the client still sends, so it reads our 4xx instead of a reset."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        conn.state, conn.deadline = LINGER, time.monotonic() + LINGER_S
        conn.buf.clear()
        self._watch(conn, selectors.EVENT_READ)
