"""The `api:` config section and its bearer tokens: who may call /v1, and under which name.

A token file holds one token per line, `NAME:TOKEN` or a bare `TOKEN` (the format Alertmanager's
`credentials_file` reads, so one file can serve both); `#` starts a comment. The name is the operator's
identity in the audit log. Tokens in `token_file` may do everything; tokens in `read_token_file` may
only read (`GET /v1/runs`). Every comparison is constant-time and never stops at the first match, so the
time taken does not say which token was close (the HTTP layer's `Bearer` does the same).

A token file that group or others may read is refused at load (exit 78): a leaked token triggers
restarts on the node. Without `token_file` the agent serves no /v1 route at all.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import Field, field_validator

from gpuwarden.agent.http import Headers, same_token
from gpuwarden.config_base import StrictModel

# RFC 6750 section 2.1 b64token: what a bearer token may contain (no spaces, no ':').
TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
MIN_TOKEN_CHARS = 16  # `openssl rand -hex 32` gives 64; shorter than 16 is a password, not a token
MAX_TOKENS = 1000


class TokenFileError(ValueError):
    """A token file the agent will not use; the message says why and how to fix it."""


def check_private(path: str) -> None:
    """Refuse a token file that is missing, not a regular file, or open to group or others."""
    try:
        st = os.stat(path)
    except OSError as err:
        raise TokenFileError(f"{path}: {err.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise TokenFileError(f"{path}: not a regular file")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise TokenFileError(
            f"{path} is open to group or others (mode {mode:04o}); `chmod 600 {path}` and restart"
        )


def parse_tokens(text: str, source: str) -> dict[str, str]:
    """NAME → token from a token file's text; TokenFileError names the line that is wrong."""
    tokens: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, token = line.rpartition(":")
        if not sep:
            name = f"token{len(tokens) + 1}"
        where = f"{source}:{number}"
        if not NAME.fullmatch(name):
            raise TokenFileError(f"{where}: the name must be 1-64 letters, digits or ._@-")
        if not TOKEN.fullmatch(token):
            raise TokenFileError(f"{where}: a token is letters, digits and -._~+/ (RFC 6750), no spaces")
        if len(token) < MIN_TOKEN_CHARS:
            raise TokenFileError(
                f"{where}: token shorter than {MIN_TOKEN_CHARS} characters (`openssl rand -hex 32`)"
            )
        if name in tokens or token in tokens.values():
            raise TokenFileError(f"{where}: {name} or its token is given twice")
        tokens[name] = token
    if not tokens:
        raise TokenFileError(f"{source}: no token in the file")
    if len(tokens) > MAX_TOKENS:
        raise TokenFileError(f"{source}: more than {MAX_TOKENS} tokens")
    return tokens


def load_tokens(path: str) -> dict[str, str]:
    check_private(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(1 << 20)
    except (OSError, UnicodeDecodeError) as err:
        raise TokenFileError(f"{path}: cannot read: {getattr(err, 'strerror', None) or err}") from None
    return parse_tokens(text, path)


class ApiSettings(StrictModel):
    """The remediation API under /v1 (docs/api.md): off until `token_file` names the tokens."""

    token_file: str | None = Field(
        None, description="NAME:TOKEN lines allowed to trigger, pause and read; mode 0600; without it no /v1"
    )
    read_token_file: str | None = Field(
        None, description="NAME:TOKEN lines allowed only to read runs (GET); mode 0600"
    )
    receivers: list[str] = Field(
        default_factory=list,
        description="Alertmanager receiver names accepted by /v1/alerts (empty: any receiver)",
    )
    forward_hops: int = Field(
        1, ge=0, le=4, description="how often an alert may be passed on to the agent that owns it"
    )
    forward_timeout_s: float = Field(
        3.0, gt=0, le=30, description="seconds to wait for the owning agent (Alertmanager waits on us)"
    )
    forward_ca_file: str | None = Field(
        None, description="PEM CA bundle to verify agents served over HTTPS (default: system CAs)"
    )

    @field_validator("token_file", "read_token_file")
    @classmethod
    def _private(cls, v: str | None) -> str | None:
        if v is not None:
            check_private(v)  # mode only: reading needs the agent's user, and the CLI may run as another
        return v


@dataclass(frozen=True)
class Identity:
    name: str  # the token's name: the operator in the audit log
    write: bool  # may trigger, pause, resume (False: read-only token)


class Tokens:
    """The current write and read-only tokens; `reload` swaps them (a SIGHUP rotates tokens)."""

    def __init__(self, write: Mapping[str, str], read: Mapping[str, str] | None = None) -> None:
        self._table: tuple[tuple[bytes, Identity], ...] = ()
        self.reload(write, read or {})

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> Tokens:
        assert settings.token_file is not None
        loaded: dict[str, dict[str, str]] = {}
        for key in ("token_file", "read_token_file"):
            path = getattr(settings, key)
            try:
                loaded[key] = load_tokens(path) if path else {}
            except TokenFileError as err:
                raise TokenFileError(f"api.{key}: {err}") from None
        return cls(loaded["token_file"], loaded["read_token_file"])

    def reload(self, write: Mapping[str, str], read: Mapping[str, str]) -> None:
        table = [(t.encode(), Identity(n, True)) for n, t in write.items()]
        table += [(t.encode(), Identity(n, False)) for n, t in read.items()]
        self._table = tuple(table)  # one reference swap: a request sees the old or the new set
        # What this agent presents when it forwards an alert: the agents of a fleet share one token file.
        self.forward_token = next(iter(write.values()), "")

    def identify(self, headers: Headers) -> Identity | None:
        """Who sent `Authorization: Bearer <token>`, or None."""
        scheme, _, supplied = headers.get("authorization", "").partition(" ")
        given = supplied.strip().encode("latin-1", "replace")
        found: Identity | None = None
        for token, identity in self._table:  # no early exit (see the module docstring)
            if same_token(given, token):
                found = identity
        return found if scheme.lower() == "bearer" else None
