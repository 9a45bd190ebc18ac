"""A replayed GPU fault travels collector → runner → store → subscriber as one transition with labels."""

from __future__ import annotations

import io
import logging
from pathlib import Path

from gpuwarden.agent.health_store import HealthStore
from gpuwarden.agent.runner import Runner
from gpuwarden.health import Action, State, Transition
from tests.fixtures.nvml.support import kmsg_logged, recording, replay_collector

XID_79 = "4,1,7200999,-;NVRM: Xid (PCI:0000:00:06): 79, pid=1, GPU has fallen off the bus.\n"


def test_a_replayed_xid_79_reaches_a_subscriber_once_with_the_gpu_index_and_uuid(tmp_path: Path) -> None:
    (tmp_path / "kmsg").write_text(kmsg_logged(XID_79))
    collector, _ = replay_collector("h200-busy", devfs=tmp_path, nvml_events=False)
    out = io.StringIO()
    log = logging.getLogger("test.transitions")
    log.handlers[:] = [logging.StreamHandler(out)]
    log.propagate, log.level = False, logging.INFO
    store = HealthStore(log)
    seen: list[Transition] = []
    store.subscribe(seen.append)
    runner = Runner(store, logging.getLogger("test.runner"))
    runner.set_collectors({"gpu": (collector, collector.settings)})
    try:
        assert runner.run("gpu") and runner.run("gpu")  # the second cycle holds the state: no new transition
        (result,) = [r for r in store.results() if r.component == "gpu.0.xid"]
    finally:
        runner.close()
    uuid = recording("h200-busy")["devices"][0]["uuid"]["value"]
    # Everything else on the recording is HEALTHY at first sight, which is no transition.
    assert [t.component for t in seen] == ["gpu.0.xid"]
    (xid,) = seen
    assert (xid.old, xid.new, xid.action) == (None, State.UNHEALTHY, Action.REBOOT_NODE)
    assert dict(xid.labels) == {"gpu": "0", "uuid": uuid}
    assert "79" in xid.reason
    reason = " ".join(xid.reason.split())
    assert out.getvalue().splitlines() == [
        f"health gpu.0.xid: none -> UNHEALTHY, action reboot_node gpu=0 uuid={uuid}: {reason}"
    ]
    assert result.since == xid.at  # the state began at the first cycle, and held through the second
