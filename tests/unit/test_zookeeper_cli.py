"""`gpuwarden zookeeper check` and `gpuwarden fleet ls` argument and config handling, and the registration
summary (no ensemble needed)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from gpuwarden import cli
from gpuwarden.fleet.member import summarize
from gpuwarden.health import HealthResult, State


def closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return int(s.getsockname()[1])


def test_zk_check_with_a_bad_server_address_exits_78_naming_the_flag(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["zookeeper", "check", "--servers", "127.0.0.1:2181,zk2:notaport"]) == 78
    assert (
        capsys.readouterr().err
        == "config error: --servers: 'zk2:notaport': port must be a number from 1 to 65535\n"
    )


def test_zk_check_with_a_bad_config_file_exits_78_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text("collectors:\n  zookeeper:\n    probe_timeout: -1\n")
    assert cli.main(["zookeeper", "check", "--config", str(config)]) == 78
    assert "collectors.zookeeper.probe_timeout: must be > 0" in capsys.readouterr().err


def test_zk_check_on_servers_that_refuse_connections_is_no_quorum_with_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    servers = [f"127.0.0.1:{closed_port()}" for _ in range(3)]
    assert cli.main(["zookeeper", "check", "--servers", ",".join(servers)]) == 2
    out = capsys.readouterr().out
    assert out.startswith("ZooKeeper ensemble default: NO_QUORUM\n  no leader among the configured servers\n")
    assert out.count("unreachable (ruok:") == 3


def test_fleet_ls_without_any_zookeeper_servers_exits_78_and_says_which_key(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["fleet", "ls"]) == 78
    assert "fleet.hosts" in capsys.readouterr().err


def test_fleet_ls_when_zookeeper_is_unreachable_exits_69_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(f"fleet:\n  hosts: ['127.0.0.1:{closed_port()}']\n  connect_timeout: 0.5\n")
    assert cli.main(["fleet", "ls", "--config", str(config)]) == 69
    err = capsys.readouterr().err
    assert err.startswith("gpuwarden: fleet unavailable: cannot reach ZooKeeper at 127.0.0.1:")
    assert "Traceback" not in err


def test_the_registration_summary_carries_the_worst_state_and_each_component() -> None:
    results = [
        HealthResult("node.memory", State.HEALTHY, "ok"),
        HealthResult("zookeeper.quorum", State.DEGRADED, "2 of 3 voters in sync"),
    ]
    summary = summarize(results, "0.1.0", [{"index": 0, "uuid": "GPU-1"}])
    assert summary == {
        "version": "0.1.0",
        "health": "DEGRADED",
        "components": {"node.memory": "HEALTHY", "zookeeper.quorum": "DEGRADED"},
        "gpus": [{"index": 0, "uuid": "GPU-1"}],
    }
