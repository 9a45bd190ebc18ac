"""The engine's series are exactly its catalog, counted from the audit log, and promtool accepts them."""

from __future__ import annotations

import subprocess
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gpuwarden.catalog import catalog_names
from gpuwarden.remediations.audit import AuditLog
from gpuwarden.remediations.engine import Engine
from gpuwarden.remediations.metrics import CATALOG
from gpuwarden.remediations.section import RemediationSettings


def engine(tmp_path: Path) -> Engine:
    quarantine = tmp_path / "quarantine.json"
    quarantine.write_text('{"GPU-5c1e": {"gpu": "1", "reason": "XID 79"}}')
    return Engine(
        RemediationSettings.model_validate(
            {
                "enabled": True,
                "audit_log": str(tmp_path / "audit.jsonl"),
                "targets": {"worker": {"kind": "process", "argv": ["true"]}},
                "playbooks": {
                    "worker_restart": {"enabled": True},
                    "gpu_quarantine": {"enabled": True, "quarantine_file": str(quarantine)},
                    "scale_signal": {"enabled": True},
                },
            }
        )
    )


def test_emitted_series_are_the_catalog_and_counters_start_from_the_audit_log(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.write("r1", "outcome", "worker_restart", "worker", result="succeeded", duration_s=12.0)
    log.write("r2", "attempt", "worker_restart", "worker")  # the agent died here
    paused = log.write("-", "pause", "*", "-", reason="driver upgrade", actor="user:alice")
    log.close()
    e = engine(tmp_path)
    families = list(e.collect())
    assert {f.name for f in families} | {
        "gpuwarden_remediation_runs",
        "gpuwarden_remediation_requests_rejected",
    } >= {n.removesuffix("_total") for n in catalog_names(CATALOG)}
    registry = CollectorRegistry()
    registry.register(e)  # type: ignore[arg-type]
    text = generate_latest(registry).decode()
    assert 'gpuwarden_remediation_runs_total{playbook="worker_restart",result="succeeded"} 1.0' in text
    assert 'gpuwarden_remediation_runs_total{playbook="worker_restart",result="interrupted"} 1.0' in text
    assert 'gpuwarden_remediation_gpu_quarantined{gpu="1",uuid="GPU-5c1e"} 1.0' in text
    assert 'gpuwarden_scale_signal{direction="up"} 0.0' in text
    assert 'gpuwarden_remediation_paused{playbook="*"} 1.0' in text
    (since,) = [
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "gpuwarden_remediation_paused_since_timestamp_seconds"
    ]
    assert since == paused["ts"]  # the pause's own time, read back from the log after the restart
    assert (
        'gpuwarden_remediation_run_duration_seconds_bucket{le="15.0",playbook="worker_restart"} 1.0' in text
    )
    checked = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    e.stop()


def test_a_playbook_without_its_target_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    from gpuwarden.config import ConfigError, from_mapping

    try:
        from_mapping(
            {"remediation": {"playbooks": {"worker_restart": {"enabled": True, "target": "gpu-box"}}}}
        )
    except ConfigError as err:
        assert err.problems == [
            "remediation: playbooks.worker_restart.target: no target named 'gpu-box' in remediation.targets "
            "(none defined)"
        ]
    else:
        raise AssertionError("expected a ConfigError")


QUARANTINED = 'gpuwarden_remediation_gpu_quarantined{gpu="1",uuid="GPU-5c1e"} 1.0'


def render(source: object) -> str:
    registry = CollectorRegistry()
    registry.register(source)  # type: ignore[arg-type]
    return generate_latest(registry).decode()


def test_a_quarantined_gpu_stays_in_the_series_when_its_playbook_is_turned_off(tmp_path: Path) -> None:
    """Turning gpu_quarantine off does not give the GPU back to the worker (the env file still leaves it
    out): the series, and GpuQuarantined with it, must stay until on-call releases the GPU."""
    quarantine = tmp_path / "quarantine.json"
    quarantine.write_text('{"GPU-5c1e": {"gpu": "1", "reason": "XID 79"}}')
    e = Engine(
        RemediationSettings.model_validate(
            {
                "enabled": True,
                "audit_log": str(tmp_path / "audit.jsonl"),
                "targets": {"worker": {"kind": "process", "argv": ["true"]}},
                "playbooks": {
                    "worker_restart": {"enabled": True},
                    "gpu_quarantine": {"enabled": False, "quarantine_file": str(quarantine)},
                },
            }
        )
    )
    assert "gpu_quarantine" not in e.playbooks
    assert QUARANTINED in render(e)
    quarantine.write_text("{}")  # `gpuwarden quarantine release GPU-5c1e`
    assert "gpuwarden_remediation_gpu_quarantined{" not in render(e)
    e.stop()


def test_the_agent_exports_quarantined_gpus_while_remediation_is_off(tmp_path: Path) -> None:
    from gpuwarden.agent.daemon import Agent
    from gpuwarden.config import from_mapping

    quarantine = tmp_path / "quarantine.json"
    quarantine.write_text('{"GPU-5c1e": {"gpu": "1", "reason": "XID 79"}}')
    cfg = from_mapping(
        {"remediation": {"playbooks": {"gpu_quarantine": {"quarantine_file": str(quarantine)}}}}
    )
    assert not cfg.remediation.enabled
    agent = Agent(cfg, None, None)
    agent._install_engine(cfg, None)
    agent.runner.render()
    assert QUARANTINED in agent.runner.exposition.plain.decode()
    checked = subprocess.run(
        ["promtool", "check", "metrics"], input=agent.runner.exposition.plain, capture_output=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    quarantine.write_text("{}")
    agent.runner.render()
    assert b"gpuwarden_remediation_gpu_quarantined" not in agent.runner.exposition.plain
    agent._install_engine(None, cfg)  # shutdown: the source goes with the engine's
    assert agent.standing is None
