"""The agent with one more collector, `stuck`: a double of a collector whose driver call never returns.

A driver in D state cannot be produced on a test machine. The double answers its first call (so READY comes)
and blocks every later call forever, the way a hung NVML or network read holds its thread.

    python -m tests.integration.stuck_agent agent --config agent.yaml
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from gpuwarden.agent.registry import CollectorContext, CollectorSettings, Item, register


@register("stuck", CollectorSettings)
class StuckCollector:
    def __init__(self, settings: CollectorSettings, ctx: CollectorContext) -> None:
        self.calls = 0

    def collect(self) -> Iterable[Item]:
        self.calls += 1
        if self.calls > 1:
            threading.Event().wait()  # forever
        return []

    def close(self) -> None:
        pass


if __name__ == "__main__":
    from gpuwarden.cli import main

    raise SystemExit(main())
