"""gpu_quarantine end to end: the real GPU collector on a replayed multi-GPU recording with a fatal XID on
one GPU, its health going through the agent's HealthStore to the engine (its subscriber), and the real
reference worker restarted without that GPU."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from gpuwarden.agent.health_store import HealthStore
from gpuwarden.health import HealthResult, State, Transition
from gpuwarden.remediations.engine import Engine
from gpuwarden.remediations.playbooks.gpu_quarantine import GpuQuarantineSettings, load, release
from gpuwarden.remediations.targets import ProcessTarget, read_env
from tests.fixtures.nvml.support import recording, replay_collector
from tests.integration.remediation_support import Worker, fast_rails, outcomes, settings, wait_for

pytestmark = pytest.mark.integration


def node(gpus: int, xid_gpu: int) -> dict[str, Any]:
    """h200-xid79 (a real H200 recording, one XID 79 scripted) as a node of `gpus` H200s: the same
    answers per board, each with its own UUID and PCI address, the XID on GPU `xid_gpu`."""
    base = recording("h200-xid79")
    out = copy.deepcopy(base)
    out["devices"] = []
    for i in range(gpus):
        dev = copy.deepcopy(base["devices"][0])
        dev["uuid"] = {"value": dev["uuid"]["value"][:-2] + f"{i:02x}"}
        dev["pci"]["value"].update(busId=f"00000000:00:{6 + i:02x}.0", device=6 + i)
        out["devices"].append(dev)
    out["device_count"] = gpus
    out["script"] = {"xid_events": [{"gpu": xid_gpu, "xid": 79}]}
    return out


class Node:
    """The GPU collector on the replay, reporting into the agent's HealthStore as the runner does."""

    def __init__(self, gpus: int, xid_gpu: int) -> None:
        self.collector, _ = replay_collector(node(gpus, xid_gpu))
        self.store = HealthStore()

    def inventory(self) -> dict[str, str]:
        return {str(i): uuid for i, (uuid, _) in self.collector.identity.items()}

    def state(self, component: str) -> str | None:
        return next((str(r.state) for r in self.store.results() if r.component == component), None)

    def subscribe(self, engine: Engine) -> Engine:
        self.store.subscribe(engine.on_transition)
        return engine

    def collect_until_unhealthy(self, component: str) -> HealthResult:
        def unhealthy() -> HealthResult | None:
            self.store.replace("gpu", [r for r in self.collector.collect() if isinstance(r, HealthResult)])
            found = [r for r in self.store.results() if r.component == component]
            return found[0] if found and found[0].state == State.UNHEALTHY else None

        return wait_for(unhealthy, timeout=20, what=f"{component} UNHEALTHY")


@pytest.fixture
def engines() -> Iterator[list[Engine]]:
    started: list[Engine] = []
    yield started
    for engine in started:
        engine.stop(stop_targets=True)


def quarantine_settings(tmp_path: Path, worker: Worker) -> dict[str, Any]:
    return {
        "enabled": True,
        "quarantine_file": str(tmp_path / "quarantine.json"),
        "triggers": [{"kind": "health", "component": "gpu.*.xid", "for_s": 1}],
        "rails": fast_rails(),
    }


def pid(engine: Engine) -> int:
    target = engine.targets["worker"]
    assert isinstance(target, ProcessTarget) and target.proc is not None
    return target.proc.pid


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().partition("=")[::2] for item in raw if item)


def test_a_fatal_xid_on_one_gpu_of_four_restarts_the_worker_without_it_until_on_call_releases_it(
    tmp_path: Path, engines: list[Engine]
) -> None:
    worker = Worker(tmp_path)
    worker.env_file.write_text("GPUWARDEN_MEMORY_FRACTION=0.9\n")
    gpus = Node(4, xid_gpu=2)
    cfg = settings(tmp_path, worker, gpu_quarantine=quarantine_settings(tmp_path, worker))
    engine = gpus.subscribe(Engine(cfg, health=gpus.state, inventory=gpus.inventory))
    engines.append(engine.start())
    wait_for(lambda: worker.infer() == 200, what="the worker serves")
    before = pid(engine)
    assert "CUDA_VISIBLE_DEVICES" not in environ(before)

    xid = gpus.collect_until_unhealthy("gpu.2.xid")
    uuids = gpus.inventory()
    assert "XID 79" in xid.reason and xid.labels["uuid"] == uuids["2"]
    outcome = wait_for(lambda: outcomes(Path(cfg.audit_log)), what="an outcome")[0]

    assert outcome["result"] == "succeeded", outcome
    keep = ",".join(uuids[i] for i in ("0", "1", "3"))
    assert read_env(str(worker.env_file))["CUDA_VISIBLE_DEVICES"] == keep
    assert pid(engine) != before and environ(pid(engine))["CUDA_VISIBLE_DEVICES"] == keep
    assert worker.infer() == 200, "the node serves on the three GPUs left"
    assert set(load(str(tmp_path / "quarantine.json"))) == {uuids["2"]}

    # The quarantine outlives the agent: a new engine reports it and does not act on the same GPU again.
    engines.remove(engine)
    engine.stop(stop_targets=True)
    seen = len(outcomes(Path(cfg.audit_log)))
    again = Engine(cfg, health=gpus.state, inventory=gpus.inventory)
    engines.append(again.start())
    registry = CollectorRegistry()
    registry.register(again)
    text = generate_latest(registry).decode()
    assert f'gpuwarden_remediation_gpu_quarantined{{gpu="2",uuid="{uuids["2"]}"}} 1.0' in text
    again.on_transition(
        Transition(
            "gpu.2.xid",
            dict(xid.labels),
            State.HEALTHY,
            State.UNHEALTHY,
            xid.reason,
            xid.suggested_action,
            time.time(),
        )
    )  # the XID seen again
    second = wait_for(lambda: outcomes(Path(cfg.audit_log))[seen:], what="an outcome after the restart")[0]
    assert (second["result"], second["reason"]) == ("skipped", f"GPU 2 ({uuids['2']}) is already quarantined")

    # On-call releases it after the inspection: the worker sees every GPU from its next start.
    said = release(GpuQuarantineSettings.model_validate(quarantine_settings(tmp_path, worker)),
                   str(worker.env_file), uuids["2"])  # fmt: skip
    assert "restart the worker" in said
    assert "CUDA_VISIBLE_DEVICES" not in read_env(str(worker.env_file))
    assert load(str(tmp_path / "quarantine.json")) == {}


def test_on_a_one_gpu_node_the_last_gpu_is_never_quarantined(tmp_path: Path, engines: list[Engine]) -> None:
    worker = Worker(tmp_path)
    worker.env_file.write_text("GPUWARDEN_MEMORY_FRACTION=0.9\n")
    gpus = Node(1, xid_gpu=0)
    cfg = settings(tmp_path, worker, gpu_quarantine=quarantine_settings(tmp_path, worker))
    engine = gpus.subscribe(Engine(cfg, health=gpus.state, inventory=gpus.inventory))
    engines.append(engine.start())
    wait_for(lambda: worker.infer() == 200, what="the worker serves")
    before = pid(engine)
    gpus.collect_until_unhealthy("gpu.0.xid")
    outcome = wait_for(lambda: outcomes(Path(cfg.audit_log)), what="an outcome")[0]
    assert outcome["result"] == "refused"
    assert "would leave 0 GPU(s), minimum 1" in outcome["reason"]
    assert pid(engine) == before and "CUDA_VISIBLE_DEVICES" not in read_env(str(worker.env_file))
    assert not (tmp_path / "quarantine.json").exists()
