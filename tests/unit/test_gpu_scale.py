"""The multi-GPU recordings derived from the real H200 ones: exact derivations, one series set per GPU."""

from __future__ import annotations

import json

import pytest

from tests.fixtures.nvml.derive_gpus import all_derived
from tests.fixtures.nvml.support import NVML, recording, replay_collector
from tests.golden import exposition, split


def test_the_committed_multi_gpu_fixtures_are_exactly_what_derive_gpus_makes_of_the_real_recordings() -> None:
    for name, derived in all_derived().items():
        assert json.loads((NVML / f"{name}.json").read_text()) == derived, f"{name}.json: run derive_gpus.py"


@pytest.mark.parametrize("count", [2, 4, 8])
def test_a_derived_node_exports_the_one_gpu_series_once_per_gpu_each_with_its_own_uuid(count: int) -> None:
    texts = []
    for name in ("h200-busy", f"h200x{count}-busy"):
        c, _ = replay_collector(recording(name), nvml_events=False)
        try:
            texts.append(exposition(split(c.collect())[0]))
        finally:
            c.close()
    one, many = ([line for line in t.splitlines() if line.startswith("gpuwarden_gpu_")] for t in texts)
    per_gpu = [line for line in one if 'gpu="0"' in line]
    assert len([line for line in many if 'gpu="' in line]) == count * len(per_gpu)
    uuids = {line.split('uuid="', 1)[1].split('"', 1)[0] for line in many if 'uuid="' in line}
    assert len(uuids) == count
    assert f"gpuwarden_gpu_devices {float(count)}" in many
