"""Broken and hostile config files: `check-config` answers exit 78 with a key path (or the file's path and
line), never a traceback, a hang or a memory blow-up; what the agent opens at start is checked at load."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from gpuwarden import cli, config
from tests.hostile_yaml import config_bytes
from tests.local_servers import self_signed

# A problem line: "config error: " then where (a key path, or the file and line) then ": " and the reason.
PROBLEM = re.compile(r"^config error: \S[^\n]*?: \S.*$")

BILLION_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + chr(ord(c) - 1)] * 9)}]\n" for c in "bcdefghi"
)

CORPUS = [
    pytest.param(
        b"agent:\n  listen: \xff\xfe\n", "agent.yaml:2: not UTF-8 text", id="bytes that are not UTF-8"
    ),
    pytest.param(
        ("a: " + "[" * 5000 + "]" * 5000).encode(), "nested deeper than 32 levels", id="deep flow nesting"
    ),
    pytest.param(
        "".join(f"{'  ' * i}k{i}:\n" for i in range(200)).encode(), "nested deeper", id="deep block nesting"
    ),
    pytest.param(
        b"collectors:\n  node:\n    interval: .inf\n", "collectors.node.interval: must be a finite", id="inf"
    ),
    pytest.param(
        b"collectors:\n  node:\n    timeout: .nan\n", "collectors.node.timeout: must be a finite", id="nan"
    ),
    pytest.param(
        b"collectors:\n  gpu:\n    call_timeout: 1.0e+300\n",
        "collectors.gpu.call_timeout: must be between",
        id="huge float",
    ),
    pytest.param(
        b"fleet:\n  session_timeout: 1.0e+20\n", "fleet.session_timeout: must be between", id="huge seconds"
    ),
    pytest.param(
        b"collectors:\n  doctor:\n    hugepages: " + b"9" * 30 + b"\n",
        "collectors.doctor.hugepages: must be",
        id="huge int",
    ),
    pytest.param(
        b"collectors:\n  doctor:\n    hugepages: " + b"9" * 5000 + b"\n",
        "agent.yaml: invalid YAML: Exceeds",
        id="5000 digits",
    ),
    pytest.param(
        b"agent: !!python/object/apply:os.system ['true']\n",
        "agent: YAML tags are not allowed",
        id="python tag",
    ),
    pytest.param(
        b"agent:\n  listen: !!binary aGVsbG8=\n", "agent.listen: YAML tags are not allowed", id="binary tag"
    ),
    pytest.param(
        b"collectors:\n  node:\n    interval: !!float abc\n",
        "collectors.node.interval: YAML tags",
        id="float tag",
    ),
    pytest.param(b"agent: !custom {}\n", "agent: YAML tags are not allowed (found !custom)", id="custom tag"),
    pytest.param(BILLION_LAUGHS.encode(), "expands to more than 100000 values", id="billion laughs"),
    pytest.param(b"a: &x [*x]\n", "a[0]: alias *x refers to an unfinished", id="recursive alias"),
    pytest.param(
        b"a: *nowhere\n", "a: alias *nowhere refers to an unfinished or unknown", id="undefined alias"
    ),
    pytest.param(
        b"agent:\n  listen: 127.0.0.1:1\n  listen: 127.0.0.1:2\n",
        "agent.listen: duplicate key 'listen'",
        id="dup key",
    ),
    pytest.param(
        b"collectors:\n  node: {}\ncollectors: {}\n",
        "collectors: duplicate key 'collectors'",
        id="dup section",
    ),
    pytest.param(b"? [a, b]\n: 1\n", "a key must be a plain value", id="complex key"),
    pytest.param(b"~: 1\n", "None: ", id="null key"),
    pytest.param(
        b"collectors:\n  node:\n    interval: 2001-13-45\n", "invalid YAML: month must be", id="bad date"
    ),
    pytest.param(b"a: 1\n---\nb: 2\n", "invalid YAML: expected a single document", id="two documents"),
    pytest.param(b"agent:\n  listen: [unclosed\n", "agent.yaml:3:1: invalid YAML", id="unclosed flow"),
    pytest.param(b"\x00\x01", "invalid YAML", id="control bytes"),
    pytest.param(
        b'paths:\n  procfs: "/pr\\0oc"\n', "paths.procfs: must not contain a NUL", id="NUL in a path"
    ),
    pytest.param(
        b'agent:\n  tls:\n    cert_file: "a\\0b"\n    key_file: k\n',
        "agent.tls.cert_file: not a file",
        id="NUL file",
    ),
    pytest.param(
        b"collectors:\n  node:\n    interval: 100000\n",
        "collectors.node.interval: must be <= 86400",
        id="a week",
    ),
]


def check(path: Path) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(["check-config", str(path)])
    return code, err.getvalue()


def assert_clean(code: int, err: str) -> None:
    assert "Traceback" not in err
    assert code in (0, config.EX_CONFIG), err
    if code == config.EX_CONFIG:
        assert err and all(PROBLEM.match(line) for line in err.splitlines()), err


@pytest.mark.parametrize(("data", "expected"), CORPUS)
def test_a_broken_or_hostile_file_is_exit_78_naming_where(data: bytes, expected: str, tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_bytes(data)
    code, err = check(path)
    assert_clean(code, err)
    assert code == config.EX_CONFIG and expected in err, err


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "agent.yaml")  # open() for reading would wait forever for a writer
    assert check(tmp_path / "agent.yaml") == (
        78,
        f"config error: {tmp_path}/agent.yaml: cannot read: not a regular file\n",
    )


def test_a_directory_is_refused(tmp_path: Path) -> None:
    assert check(tmp_path) == (78, f"config error: {tmp_path}: cannot read: Is a directory\n")


def test_a_link_to_an_endless_device_is_refused(tmp_path: Path) -> None:
    (tmp_path / "agent.yaml").symlink_to("/dev/zero")
    code, err = check(tmp_path / "agent.yaml")
    assert code == 78 and "not a regular file" in err


def test_a_huge_file_is_refused_after_reading_at_most_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    with open(path, "wb") as f:
        f.truncate(4 << 30)  # sparse 4 GiB: reading it whole would take seconds and gigabytes
    code, err = check(path)
    assert code == 78 and "larger than 1024 KiB" in err


def tls_config(tmp_path: Path, **tls: object) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text("agent:\n  tls:\n" + "".join(f"    {k}: {v}\n" for k, v in tls.items()))
    return path


def test_missing_tls_files_are_exit_78_at_check_config_not_exit_1_at_start(tmp_path: Path) -> None:
    path = tls_config(tmp_path, cert_file=tmp_path / "gone.crt", key_file=tmp_path / "gone.key")
    code, err = check(path)
    assert code == 78
    assert err.splitlines() == [
        f"config error: agent.tls.cert_file: cannot read {tmp_path}/gone.crt: No such file or directory",
        f"config error: agent.tls.key_file: cannot read {tmp_path}/gone.key: No such file or directory",
    ]
    out = io.StringIO()
    with contextlib.redirect_stderr(out):
        assert cli.main(["agent", "--config", str(path)]) == 78  # the agent refuses the same way


def test_a_key_of_another_certificate_is_exit_78(tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path, "a")
    _, other_key = self_signed(tmp_path, "b")
    code, err = check(tls_config(tmp_path, cert_file=cert, key_file=other_key))
    assert code == 78 and err.startswith("config error: agent.tls: cannot use cert_file with key_file:"), err


def test_a_ca_file_that_is_not_pem_is_exit_78(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, "a")
    (tmp_path / "ca.pem").write_text("not a certificate\n")
    code, err = check(tls_config(tmp_path, cert_file=cert, key_file=key, client_ca_file=tmp_path / "ca.pem"))
    assert code == 78 and err.startswith("config error: agent.tls: cannot use client_ca_file:"), err


def test_a_usable_certificate_and_key_pass(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, "a")
    assert check(tls_config(tmp_path, cert_file=cert, key_file=key, client_ca_file=cert)) == (0, "")


# In-process for speed (about 2 ms a document); the subprocess sample below checks the real entry point.
FUZZ = settings(max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(data=config_bytes)
def test_check_config_never_tracebacks_on_generated_files(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "agent.yaml"
        path.write_bytes(data)
        assert_clean(*check(path))


@settings(max_examples=30, deadline=None)
@given(data=config_bytes)
def test_the_check_config_command_never_tracebacks(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "agent.yaml"
        path.write_bytes(data)
        result = subprocess.run(
            [sys.executable, "-m", "gpuwarden", "check-config", str(path)], capture_output=True, text=True
        )
    assert_clean(result.returncode, result.stderr)


def test_a_key_that_would_not_read_as_itself_is_quoted_in_the_error() -> None:
    """Found by the generated-files test: a non-breaking space as a key printed as a blank key path."""
    with pytest.raises(config.ConfigError) as info:
        config.from_mapping({"\xa0": {}, "agent": {"a.b": 1}})
    assert sorted(info.value.problems) == ['"\\u00a0": unknown key', 'agent."a.b": unknown key']
