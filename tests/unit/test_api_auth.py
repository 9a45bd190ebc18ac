"""Token files: the format, the permission check (exit 78), and who a bearer token says you are."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpuwarden import cli
from gpuwarden.agent.api_auth import Identity, TokenFileError, Tokens, load_tokens, parse_tokens
from gpuwarden.agent.http import Headers
from gpuwarden.config import EX_CONFIG

A = "0123456789abcdef0123456789abcdef"
B = "fedcba9876543210fedcba9876543210"


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        (f"{A}\n", {"token1": A}),
        (f"# on-call\nalice:{A}\n\nalertmanager:{B}\n", {"alice": A, "alertmanager": B}),
        (f"  bob:{A}  \r\n", {"bob": A}),
        (f"{A}=\n", {"token1": A + "="}),
    ],
)
def test_a_token_file_holds_bare_or_named_tokens(text: str, tokens: dict[str, str]) -> None:
    assert parse_tokens(text, "f") == tokens


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "no token"),
        ("# nothing\n", "no token"),
        ("short\n", "f:1: token shorter"),
        (f"alice:{A}\nalice:{B}\n", "f:2: alice or its token is given twice"),
        (f"alice:{A}\nbob:{A}\n", "f:2"),
        (f"al ice:{A}\n", "f:1: the name"),
        (f"alice:{A} {B}\n", "f:1: a token is"),
        (f"alice:{A}\u00e9\n", "f:1: a token is"),
    ],
)
def test_a_token_file_that_cannot_be_used_names_the_line(text: str, complaint: str) -> None:
    with pytest.raises(TokenFileError, match=complaint):
        parse_tokens(text, "f")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602])
def test_a_token_file_open_to_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    f = tmp_path / "tokens"
    f.write_text(A + "\n")
    f.chmod(mode)
    with pytest.raises(TokenFileError, match=f"mode {mode:04o}"):
        load_tokens(str(f))


def test_a_private_token_file_loads(tmp_path: Path) -> None:
    f = tmp_path / "tokens"
    f.write_text(f"alice:{A}\n")
    f.chmod(0o600)
    assert load_tokens(str(f)) == {"alice": A}


def test_a_config_naming_a_0644_token_file_exits_78_with_the_key_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "tokens"
    f.write_text(A + "\n")
    f.chmod(0o644)
    config = tmp_path / "agent.yaml"
    config.write_text(f"api:\n  token_file: {f}\n")
    assert cli.main(["check-config", str(config)]) == EX_CONFIG
    err = capsys.readouterr().err
    assert f"config error: api.token_file: {f} is open to group or others (mode 0644)" in err
    assert "Traceback" not in err


def test_a_missing_token_file_exits_78(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(f"api:\n  read_token_file: {tmp_path / 'nope'}\n")
    assert cli.main(["check-config", str(config)]) == EX_CONFIG
    assert "api.read_token_file:" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("authorization", "identity"),
    [
        (f"Bearer {A}", Identity("alice", True)),
        (f"bearer   {A}", Identity("alice", True)),
        (f"Bearer {B}", Identity("viewer", False)),
        (f"Basic {A}", None),
        (f"Bearer {A[:-1]}", None),
        (f"Bearer {A}x", None),
        ("Bearer ", None),
        ("", None),
        (f"Bearer {A}\u00ff", None),
    ],
)
def test_a_bearer_token_says_who_called_and_whether_they_may_write(
    authorization: str, identity: Identity | None
) -> None:
    tokens = Tokens({"alice": A}, {"viewer": B})
    headers = Headers({"Authorization": authorization} if authorization else {})
    assert tokens.identify(headers) == identity


def test_reloaded_tokens_replace_the_old_ones() -> None:
    tokens = Tokens({"alice": A})
    tokens.reload({"bob": B}, {})
    assert tokens.identify(Headers({"Authorization": f"Bearer {A}"})) is None
    assert tokens.identify(Headers({"Authorization": f"Bearer {B}"})) == Identity("bob", True)
