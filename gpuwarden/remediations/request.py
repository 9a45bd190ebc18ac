"""What the engine accepts: one typed `Request` per wish to run a playbook, from any source.

Health transitions, Alertmanager alerts (the API's webhook), manual requests (API, CLI) and a supervised
process that exited all become a `Request`; `Engine.submit(request)` answers at once with `Submitted`
(queued with its run id, or rejected with a reason) and never blocks on the remediation itself.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Source = Literal["health", "alert", "manual", "exit", "schedule"]


@dataclass(frozen=True)
class Request:
    playbook: str
    source: Source
    actor: str  # who asked: `health:inference.target`, `alertmanager:CudaOOM`, `user:alice`
    reason: str
    component: str | None = None  # the health component to re-check right before acting
    labels: Mapping[str, str] = field(default_factory=dict)  # the subject (gpu, uuid, ...)
    dry_run: bool = False  # a manual "what would you do": same path, no action
    flaps: int = 0  # times the trigger entered its bad state within the playbook's flap window
    at: float = field(default_factory=time.time)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])


@dataclass(frozen=True)
class Submitted:
    accepted: bool
    run_id: str
    reason: str  # "queued", or why not (unknown playbook, queue full, already running, duplicate)
