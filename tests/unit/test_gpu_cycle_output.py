"""The GPU collector's output, cycle by cycle, equals what it was before its metric building was made cheaper.

tests/fixtures/nvml/cycles/*.txt were written by the collector as it was before that work (main at ab51563,
with UPDATE_GOLDEN=1): every family, sample, label and value of the exposition and every health result, for
three cycles of a collector that reads the slow tier once (then serves it from cache) and three of one that
reads it every cycle, on the real H200 recordings, the 8-GPU ones derived from them and the fault fixtures.
A series lost or changed by a faster code path fails here.
"""

from __future__ import annotations

import pytest

from gpuwarden.health import HealthResult
from tests.fixtures.nvml.support import NVML, replay_collector
from tests.golden import assert_golden, exposition, split

CASES = [
    "h200-idle",
    "h200-busy",
    "h200x8-idle",
    "h200x8-busy",
    "h200-gpu-lost",
    "h200-fell-off-bus",
    "h200-remap-failed",
    "h200-ecc-storm",
    "h200-recovery-reset",
]


def _health(results: list[HealthResult]) -> str:
    return "".join(
        f"{r.component} {r.state} {r.suggested_action} {dict(r.labels)} {r.reason}\n" for r in results
    )


@pytest.mark.parametrize("case", CASES)
def test_each_cycle_exports_what_the_collector_exported_before(case: str) -> None:
    # slow_interval 1e-9: every cycle reads the slow tier; 3600: only the first (the agent's default).
    parts = []
    for slow_interval, cycles in ((3600.0, 3), (1e-9, 3)):
        c, _ = replay_collector(
            case, expected_gpus=8 if "x8" in case else 1, nvml_events=False, slow_interval=slow_interval
        )
        try:
            for n in range(1, cycles + 1):
                ms, results = split(c.collect())
                parts.append(f"## slow_interval {slow_interval:g}, cycle {n}: exposition\n{exposition(ms)}")
                parts.append(f"## slow_interval {slow_interval:g}, cycle {n}: health\n{_health(results)}")
        finally:
            c.close()
    assert_golden("".join(parts), NVML / "cycles" / f"{case}.txt")
