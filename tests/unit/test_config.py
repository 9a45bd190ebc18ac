"""Config validation: every problem is one line naming its key path; the CLI exits 78."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gpuwarden import cli, config
from gpuwarden.address import parse_listen

ROOT = Path(__file__).resolve().parents[2]

BAD_CONFIGS = [
    pytest.param(
        {"collectors": {"node": {"interval": 0}}},
        ["collectors.node.interval: must be > 0"],
        id="a zero interval is rejected with its key path",
    ),
    pytest.param(
        {"collectors": {"node": {"timeout": -1}}},
        ["collectors.node.timeout: must be > 0"],
        id="a negative timeout is rejected",
    ),
    pytest.param(
        {"agent": {"listen": "9837"}},
        ["agent.listen: must be HOST:PORT (IPv6 as [ADDR]:PORT)"],
        id="a listen address without a host is rejected",
    ),
    pytest.param(
        {"agent": {"listen": "::1:9837"}},
        ["agent.listen: an IPv6 address must be written in brackets: [ADDR]:PORT"],
        id="an unbracketed IPv6 listen address is rejected",
    ),
    pytest.param(
        {"agent": {"listen": "127.0.0.1:99999"}},
        ["agent.listen: port must be a number from 0 to 65535"],
        id="an out-of-range port is rejected",
    ),
    pytest.param(
        {"agent": {"lisen": "127.0.0.1:1"}},
        ["agent.lisen: unknown key"],
        id="a misspelt key is an error, not silently ignored",
    ),
    pytest.param(
        {"collectors": {"nosuch": {}}},
        ["collectors.nosuch: unknown key"],
        id="an unknown collector is an error",
    ),
    pytest.param(
        {"agent": {"log_format": "xml"}},
        ["agent.log_format: must be one of 'text' or 'json'"],
        id="an unknown log format lists the allowed ones",
    ),
    pytest.param(
        {"collectors": {"node": {"enabled": "sometimes"}}},
        ["collectors.node.enabled: must be true or false"],
        id="a non-boolean switch is rejected",
    ),
    pytest.param(
        {"collectors": {"node": {"disk_paths": ["/", 3]}}},
        ["collectors.node.disk_paths[1]: must be a string (a path) or a mapping {path, min_free}"],
        id="a list element is named by its index",
    ),
    pytest.param(
        {"agent": {"tls": {"cert_file": "/dev/null"}}},  # readable: the pairing is what fails
        ["agent.tls: cert_file and key_file must be given together"],
        id="a TLS certificate without its key is rejected",
    ),
    pytest.param(
        {"collectors": {"node": {"interval": 0, "memory_available_min_ratio": 2}}, "extra": 1},
        [
            "collectors.node.interval: must be > 0",
            "collectors.node.memory_available_min_ratio: must be <= 1",
            "extra: unknown key",
        ],
        id="every problem is reported at once, not just the first",
    ),
    pytest.param([1, 2], ["(top level): must be a mapping"], id="a list at the top level is rejected"),
    pytest.param(
        {"collectors": {"zookeeper": {"enabled": True}}},
        ["collectors.zookeeper.servers: name the ensemble's servers (or set fleet.hosts)"],
        id="a check that needs two sections names the key to fix",
    ),
]


@pytest.mark.parametrize(("data", "expected"), BAD_CONFIGS)
def test_bad_config_gives_one_line_per_problem(data: object, expected: list[str]) -> None:
    with pytest.raises(config.ConfigError) as err:
        config.from_mapping(data)
    assert sorted(err.value.problems) == sorted(expected)


@pytest.mark.parametrize(("data", "expected"), BAD_CONFIGS)
def test_check_config_exits_78_and_prints_the_key_paths(
    data: object, expected: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(data))
    assert cli.main(["check-config", str(path)]) == config.EX_CONFIG
    err = capsys.readouterr().err
    assert sorted(err.splitlines()) == sorted(f"config error: {line}" for line in expected)
    assert "Traceback" not in err


def test_invalid_yaml_names_the_line_and_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("agent:\n  listen: [unclosed\n")
    assert cli.main(["check-config", str(path)]) == config.EX_CONFIG
    err = capsys.readouterr().err
    assert err.startswith(f"config error: {path}:3:1: invalid YAML")


def test_a_missing_file_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check-config", str(tmp_path / "nope.yaml")]) == config.EX_CONFIG
    assert "cannot read: No such file or directory" in capsys.readouterr().err


def test_an_empty_file_means_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("")
    assert config.load(str(path)) == config.AgentConfig()


def test_the_built_in_defaults_listen_on_loopback_and_enable_the_node_collector() -> None:
    cfg = config.load(None)
    assert cfg.agent.listen == "127.0.0.1:9837"
    assert cfg.collector_settings("node").enabled


@pytest.mark.parametrize("example", ["agent.yaml", "demo.yaml"])
def test_the_shipped_example_configs_validate(example: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check-config", str(ROOT / "examples" / example)]) == 0
    assert capsys.readouterr().out == "OK\n"


def test_the_agent_refuses_to_start_on_a_bad_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("collectors:\n  node:\n    interval: 0\n")
    assert cli.main(["agent", "--config", str(path)]) == config.EX_CONFIG
    assert capsys.readouterr().err == "config error: collectors.node.interval: must be > 0\n"


@pytest.mark.parametrize(
    ("listen", "expected"),
    [("127.0.0.1:9837", ("127.0.0.1", 9837)), ("[::1]:0", ("::1", 0)), ("localhost:80", ("localhost", 80))],
)
def test_listen_addresses_parse_to_host_and_port(listen: str, expected: tuple[str, int]) -> None:
    assert parse_listen(listen) == expected
