"""Every CLI command x bad input: one clear line and the right exit code, never a traceback.

A new subcommand joins the table: the last test fails until every command of the parser has a row.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpuwarden import cli

EX_USAGE, EX_CONFIG = 2, 78


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("bad")
    made = {
        "latin1": b'agent:\n  listen: "caf\xe9:9837"\n',
        "dup": b"agent:\n  listen: 127.0.0.1:1\nagent:\n  listen: 127.0.0.1:2\n",
        "yaml": b"agent: [unclosed\n",
        "unknown": b"agent:\n  lisen: 127.0.0.1:9837\n",
        "tls": b"agent:\n  tls:\n    cert_file: /nonexistent/cert.pem\n    key_file: /nonexistent/key.pem\n",
        "file": b"not a directory\n",
    }
    out = {}
    for name, data in made.items():
        (d / name).write_bytes(data)
        out[name] = str(d / name)
    out["dir"] = str(d)
    out["missing"] = str(d / "absent.yaml")
    return out


# (argv with {placeholders} from `files`, exit code, words the one error line must hold)
TABLE: list[tuple[str, int, str]] = [
    ("check-config {latin1}", EX_CONFIG, "not UTF-8 text"),
    ("check-config {dup}", EX_CONFIG, "duplicate key 'agent'"),
    ("check-config {yaml}", EX_CONFIG, "invalid YAML"),
    ("check-config {unknown}", EX_CONFIG, "agent.lisen: unknown key"),
    ("check-config {tls}", EX_CONFIG, "agent.tls.cert_file: cannot read /nonexistent/cert.pem"),
    ("check-config {missing}", EX_CONFIG, "cannot read: No such file"),
    ("check-config {dir}", EX_CONFIG, "cannot read: Is a directory"),
    ("check-config", EX_USAGE, "the following arguments are required: file"),
    ("agent --config {latin1}", EX_CONFIG, "not UTF-8 text"),
    ("agent --config {tls}", EX_CONFIG, "agent.tls.key_file: cannot read"),
    ("agent --listen nonsense", EX_CONFIG, "--listen: must be HOST:PORT"),
    ("agent --log-format xml", EX_USAGE, "invalid choice: 'xml'"),
    ("config-docs extra", EX_USAGE, "unrecognized arguments: extra"),
    ("gpu record", EX_USAGE, "the following arguments are required: --out"),
    ("doctor --config {dup}", EX_CONFIG, "duplicate key"),
    ("doctor --bogus", EX_USAGE, "unrecognized arguments: --bogus"),
    (
        "zookeeper check --timeout -1 --servers 127.0.0.1:2181",
        EX_CONFIG,
        "--timeout: must be a number of seconds",
    ),
    ("zookeeper check --timeout abc", EX_USAGE, "invalid float value: 'abc'"),
    ("zookeeper check --servers garbage.invalid", EX_CONFIG, "'garbage.invalid': host name does not resolve"),
    ("zookeeper check --servers ,", EX_CONFIG, "--servers: empty"),
    ("zookeeper check --servers 127.0.0.1:99999", EX_CONFIG, "port must be a number from 1 to 65535"),
    ("zookeeper check --config {dup}", EX_CONFIG, "duplicate key"),
    ("fleet ls --hosts 127.0.0.1:99999", EX_CONFIG, "port must be a number from 1 to 65535"),
    ("fleet ls --config {latin1}", EX_CONFIG, "not UTF-8 text"),
    ("fleet hold --hosts 127.0.0.1:2181 --reason r", EX_CONFIG, "COMMAND: give the command to run after --"),
    ("fleet hold --hosts 127.0.0.1:2181 --reason r --wait 0 -- true", EX_CONFIG, "--wait: must be > 0"),
    ("fleet hold --hosts 127.0.0.1:2181 -- true", EX_USAGE, "the following arguments are required: --reason"),
    ("fleet", EX_USAGE, "the following arguments are required"),
    ("worker --model-dir {file}", EX_CONFIG, "--model-dir: {file} is not a directory"),
    ("worker --memory-fraction 2", EX_CONFIG, "--memory-fraction: must be greater than 0"),
    ("worker --listen nonsense", EX_CONFIG, "--listen: must be HOST:PORT"),
    ("worker --max-concurrency x", EX_USAGE, "invalid int value: 'x'"),
    ("runs --config {dup}", EX_CONFIG, "duplicate key"),
    ("runs --since abc", EX_USAGE, "invalid float value: 'abc'"),
    ("runs --audit-log {dir}", 1, "Is a directory"),
    ("runs --audit-log {dir}/none", 1, "no audit log at"),
    ("dashboards build", EX_USAGE, "the following arguments are required: --out"),
    ("dashboards build --out {file}", 1, "cannot write {file}/grafana"),
    ('rules build --out {dir} --job a"b', EX_CONFIG, "--job: 'a\"b' must be letters"),
    ("rules build --out {file}", 1, "cannot write {file}/alertmanager"),
    ("runs --agent http://127.0.0.1:1 --token-file {dir}", EX_CONFIG, "{dir}: not a regular file"),
    ("remediate worker_restart", EX_USAGE, "the following arguments are required: --reason"),
    ("remediate worker_restart --reason r --param gpu", EX_CONFIG, "--param gpu: must be KEY=VALUE"),
    ("remediate worker_restart --reason r --wait x", EX_USAGE, "invalid float value: 'x'"),
    ("run", EX_USAGE, "the following arguments are required: id"),
    ("run abc --token-file {dir}/none", EX_CONFIG, "--token-file: {dir}/none: No such file"),
    ("pause --playbook worker_restart", EX_USAGE, "the following arguments are required: --reason"),
    ("resume --reason r --config {dup}", EX_CONFIG, "duplicate key"),
    ("reset --playbook worker_restart", EX_USAGE, "the following arguments are required: --reason"),
    ("reset --reason r --agent http://127.0.0.1:1 --token-file {dir}/none", EX_CONFIG, "No such file"),
    ("quarantine", EX_USAGE, "the following arguments are required"),
    ("quarantine release", EX_USAGE, "the following arguments are required: uuid"),
    ("quarantine list --config {dup}", EX_CONFIG, "duplicate key"),
    ("quarantine release GPU-0", 1, "GPU-0 is not quarantined (quarantined: none)"),
]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = cli.main(argv)
    except SystemExit as done:  # argparse's usage errors
        code = int(done.code or 0)
    captured = capsys.readouterr()
    return code, captured.err + captured.out


@pytest.mark.parametrize(("line", "code", "words"), TABLE, ids=[row[0] for row in TABLE])
def test_a_bad_input_gets_one_clear_line_and_its_exit_code(
    line: str, code: int, words: str, files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [part.format(**files) for part in line.split()]
    got, text = _run(argv, capsys)  # an uncaught exception (a traceback to the user) fails here
    assert got == code, text
    assert words.format(**files) in text
    assert "Traceback" not in text


@pytest.fixture
def taken_port() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_an_agent_on_a_taken_port_names_the_address(taken_port: int, tmp_path: Path) -> None:
    # A real process: the agent starts its collectors before it binds, and must stop them again.
    done = subprocess.run(
        [str(Path(sys.executable).parent / "gpuwarden"), "agent", "--listen", f"127.0.0.1:{taken_port}"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode != 0
    assert f"127.0.0.1:{taken_port}" in done.stderr and "Address already in use" in done.stderr
    assert "Traceback" not in done.stderr


def test_every_command_has_a_row_in_the_table() -> None:
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices  # noqa: SLF001
    assert commands is not None
    covered = {row[0].split()[0] for row in TABLE} | {"agent"}
    assert set(commands) <= covered, set(commands) - covered
