"""The engine probe collector: a canary inference with a golden answer, on an interval.

Liveness endpoints say a process answers; only an inference with a known answer says the engine computes.
Each collection (1) re-verifies the model files when they changed, (2) checks the serving endpoint's
readiness when configured, (3) runs the canary through the backend and compares with the golden output,
(4) optionally times a no-op kernel launch. Transient failures turn health DEGRADED, then UNHEALTHY after
`failure_threshold` in a row (one slow probe should not restart a worker); deployment failures (bad
checksum, missing module, a plan for another GPU) are UNHEALTHY at once.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator

from gpuwarden.agent.registry import CollectorContext, Item, register
from gpuwarden.catalog import Families
from gpuwarden.collectors.engine.catalog import CATALOG
from gpuwarden.collectors.engine.files import ModelFiles
from gpuwarden.collectors.engine.http_backend import HttpBackend, check_ready, limits
from gpuwarden.collectors.engine.isolated import IsolatedBackend, in_process
from gpuwarden.collectors.engine.kernel_latency import (
    KernelLatency,
    KernelLatencyUnavailable,
    LaunchTimer,
)
from gpuwarden.collectors.engine.probe import REASONS, Backend, ProbeFailure, compare
from gpuwarden.collectors.engine.settings import EngineSettings
from gpuwarden.health import Action, HealthResult, State
from gpuwarden.modelfiles import CANARY, Canary


def make_backend(settings: EngineSettings, model_dir: str) -> Backend:
    if settings.backend == "http":
        return HttpBackend(settings.http, settings.probe_timeout)
    by_kind = {"onnxruntime": settings.onnxruntime, "tensorrt": settings.tensorrt, "torch": settings.torch}
    sub_settings = by_kind[settings.backend]
    if settings.isolate:
        # What is left of the collector's deadline after the readiness gate, with a margin for the pipe.
        deadline = max(settings.timeout - settings.probe_timeout - 0.5, 0.5)
        return IsolatedBackend(settings.backend, sub_settings, model_dir, deadline)
    return in_process(settings.backend, sub_settings, model_dir)


@register("engine", EngineSettings)
class EngineCollector:
    def __init__(
        self, settings: EngineSettings, ctx: CollectorContext, kernel: LaunchTimer | None = None
    ) -> None:
        """`kernel` injects a launch timer (tests pass a replay recorded on an H200 node)."""
        self.settings = settings
        self.log = ctx.log
        model_dir = ctx.paths.root(settings.model_dir)
        self.backend = make_backend(settings, model_dir)
        names = ([CANARY] if self.backend.uses_canary else []) + list(self.backend.files)
        self.files = ModelFiles(model_dir, names, settings.verify_checksums) if names else None
        self.canary: Canary | None = None
        self.consecutive = 0
        self.probes = 0
        self.failures: Counter[str] = Counter()
        self.ready_limits = limits(settings.probe_timeout, settings.http.max_body_bytes)
        if settings.kernel_latency == "off":
            self.kernel: LaunchTimer | None = None
        else:
            self.kernel = kernel or KernelLatency(settings.tensorrt.device)
        self._kernel_note_logged = False

    def close(self) -> None:
        self.backend.close()
        if self.kernel is not None:
            self.kernel.close()

    def _probe(self) -> float | None:
        """Run one canary; the max abs error when outputs were compared; ProbeFailure otherwise."""
        if self.files is not None and self.files.refresh():
            self.canary = self.files.load_canary() if self.backend.uses_canary else None
            self.backend.reload()
        if self.settings.serving_ready_url:
            check_ready(self.settings.serving_ready_url, self.ready_limits)
        outputs = self.backend.run(self.canary)
        if outputs is None:  # the backend judged the answer itself (OpenAI text completion)
            return None
        assert self.canary is not None
        result = compare(self.canary, outputs)
        if result.worst:
            raise WrongAnswer(result.max_abs_error, f"answer differs from the golden output: {result.worst}")
        return result.max_abs_error

    def collect(self) -> Iterator[Item]:
        fams = Families(CATALOG)
        backend = self.backend.name
        started = time.perf_counter()
        failure: ProbeFailure | None = None
        max_err: float | None = None
        try:
            max_err = self._probe()
        except WrongAnswer as err:
            failure, max_err = err, err.max_abs_error
        except ProbeFailure as err:
            failure = err
        except Exception as err:  # a backend bug must read as a failed probe, not a dead collector
            self.log.exception("engine probe raised")
            failure = ProbeFailure("runtime_error", f"{type(err).__name__}: {err}")
        elapsed = time.perf_counter() - started
        self.probes += 1
        if failure is None:
            self.consecutive = 0
        else:
            self.consecutive += 1
            self.failures[failure.reason] += 1
        fams.add("gpuwarden_engine_probe_success", failure is None, backend=backend)
        fams.add("gpuwarden_engine_probe_latency_seconds", elapsed, backend=backend)
        fams.add("gpuwarden_engine_probe_consecutive_failures", self.consecutive, backend=backend)
        fams.add("gpuwarden_engine_probes_total", self.probes, backend=backend)
        for reason in REASONS:  # every reason from 0, so increase() sees the first failure
            fams.add(
                "gpuwarden_engine_probe_failures_total", self.failures[reason], backend=backend, reason=reason
            )
        if max_err is not None:
            fams.add("gpuwarden_engine_probe_max_abs_error", max_err, backend=backend)
        runtime, version = self.backend.runtime_info()
        fams.add("gpuwarden_engine_probe_info", 1, backend=backend, runtime=runtime, version=version)
        yield self._health(failure, elapsed, max_err)
        yield from self._kernel_latency(fams)
        yield from fams

    def _health(self, failure: ProbeFailure | None, elapsed: float, max_err: float | None) -> HealthResult:
        name, threshold = self.backend.name, self.settings.failure_threshold
        if failure is None:
            err = "" if max_err is None else f", max error {max_err:.2g}"
            return HealthResult(
                "engine.probe",
                State.HEALTHY,
                f"{name} canary answered correctly in {elapsed * 1e3:.1f} ms{err}",
            )
        permanent, action = REASONS[failure.reason]
        if permanent or self.consecutive >= threshold:
            streak = "" if permanent else f" ({self.consecutive} probes in a row)"
            return HealthResult(
                "engine.probe", State.UNHEALTHY, f"{name} probe failed{streak}: {failure}", action
            )
        return HealthResult(
            "engine.probe",
            State.DEGRADED,
            f"{name} probe failed ({self.consecutive} of {threshold} before UNHEALTHY): {failure}",
            action,
        )

    def _kernel_latency(self, fams: Families) -> Iterator[HealthResult]:
        if self.kernel is None:
            return
        try:
            sample = self.kernel.measure(self.settings.kernel_latency_samples)
        except KernelLatencyUnavailable as err:
            if not self._kernel_note_logged:
                self.log.log(
                    logging.WARNING if self.settings.kernel_latency == "on" else logging.INFO,
                    "kernel launch latency not measured: %s",
                    err,
                )
                self._kernel_note_logged = True
            if self.settings.kernel_latency == "on":
                yield HealthResult(
                    "engine.kernel_launch", State.UNKNOWN, f"not measured: {err}", Action.INSPECT_HARDWARE
                )
            return
        labels = {"gpu": str(sample.device), "uuid": sample.uuid}
        fams.add("gpuwarden_engine_kernel_launch_latency_seconds", sample.gpu_seconds, **labels)
        fams.add("gpuwarden_engine_kernel_launch_host_seconds", sample.host_seconds, **labels)


class WrongAnswer(ProbeFailure):
    def __init__(self, max_abs_error: float, detail: str) -> None:
        super().__init__("wrong_answer", detail)
        self.max_abs_error = max_abs_error
