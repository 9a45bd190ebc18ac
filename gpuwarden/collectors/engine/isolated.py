"""Run an in-process backend (onnxruntime, tensorrt, torch) in a child process instead of the agent's.

The runner's deadline abandons a hung collector thread but cannot stop native code: a CUDA call stuck in
the driver keeps its thread forever, and a TensorRT or CUDA abort on a bad plan ends the whole process,
agent included. In a child, a hang is ended by killing the child (reason `timeout`) and a crash is a
probe result (reason `runtime_error`, with the signal), never an outage of the node's monitoring. The
child is started once (spawn, never fork: CUDA state must not be inherited) and reused, so the model is
loaded once and a probe costs one pipe round trip.
"""

from __future__ import annotations

import multiprocessing
import signal
from multiprocessing.connection import Connection
from typing import Any

from gpuwarden.collectors.engine.probe import Backend, Outputs, ProbeFailure
from gpuwarden.modelfiles import Canary


def in_process(kind: str, settings: Any, model_dir: str) -> Backend:
    """The onnxruntime, tensorrt or torch backend itself: what the child runs (or the agent, not isolated)."""
    if kind == "onnxruntime":
        from gpuwarden.collectors.engine.onnx_backend import OnnxBackend

        return OnnxBackend(settings, f"{model_dir}/{settings.model_file}")
    if kind == "torch":
        from gpuwarden.collectors.engine.torch_backend import TorchBackend

        return TorchBackend(settings, model_dir)
    from gpuwarden.collectors.engine.tensorrt_backend import TensorRTBackend

    return TensorRTBackend(settings, model_dir)


def _serve(conn: Connection, kind: str, settings: Any, model_dir: str) -> None:
    """The child's loop: ("run", canary) → ("ok", outputs, info) | ("fail", (reason, detail), info)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C on the agent's terminal is the parent's business
    backend = in_process(kind, settings, model_dir)
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request[0] == "reload":
            backend.reload()
            continue
        try:
            outputs = backend.run(request[1])
            conn.send(("ok", None if outputs is None else dict(outputs), backend.runtime_info()))
        except ProbeFailure as err:
            conn.send(("fail", (err.reason, err.detail), backend.runtime_info()))
        except Exception as err:
            conn.send(("fail", ("runtime_error", f"{type(err).__name__}: {err}"), backend.runtime_info()))


class IsolatedBackend:
    def __init__(self, kind: str, settings: Any, model_dir: str, deadline: float) -> None:
        self.kind, self.settings, self.model_dir, self.deadline = kind, settings, model_dir, deadline
        template = in_process(kind, settings, model_dir)  # constructors are cheap and do no I/O
        self.name, self.uses_canary, self.files = template.name, template.uses_canary, template.files
        self._info = template.runtime_info()
        self._proc: Any = None
        self._conn: Connection | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.is_alive() else None

    def _start(self) -> Connection:
        if self._proc is not None and not self._proc.is_alive():
            # It died between two probes (killed, or a crash in work left running after it answered):
            # a failed probe like a death during one, never papered over by a silent restart. The next
            # probe starts a fresh process.
            code = self._stop()
            raise ProbeFailure(
                "runtime_error", f"the {self.kind} probe process died ({_exit(code)}) since the last probe"
            )
        if self._conn is None or self._proc is None:
            self.close()
            ctx = multiprocessing.get_context("spawn")
            parent, child = ctx.Pipe()
            self._proc = ctx.Process(
                target=_serve,
                args=(child, self.kind, self.settings, self.model_dir),
                name=f"gpuwarden-probe-{self.kind}",
                daemon=True,
            )
            self._proc.start()
            child.close()
            self._conn = parent
        return self._conn

    def run(self, canary: Canary | None) -> Outputs | None:
        conn = self._start()
        try:
            conn.send(("run", canary))
            ready = conn.poll(self.deadline)
            reply = conn.recv() if ready else None
        except (EOFError, OSError):
            reply, ready = None, True
        if reply is None:
            code = self._stop()
            if not ready:
                raise ProbeFailure(
                    "timeout",
                    f"the {self.kind} canary took longer than {self.deadline:g} s; probe process killed",
                )
            raise ProbeFailure("runtime_error", f"the {self.kind} probe process died ({_exit(code)})")
        status, payload, self._info = reply
        if status == "fail":
            raise ProbeFailure(*payload)
        return payload

    def reload(self) -> None:
        if self._conn is not None:
            try:
                self._conn.send(("reload",))
            except OSError:
                self._stop()

    def runtime_info(self) -> tuple[str, str]:
        return self._info

    def _stop(self) -> int | None:
        proc, self._proc = self._proc, None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if proc is None or proc.pid is None:  # never started (spawn itself failed)
            return None
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        return proc.exitcode

    def close(self) -> None:
        self._stop()


def _exit(code: int | None) -> str:
    if code is None:
        return "exit status unknown"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"
