"""The one typed config (YAML), validated as a whole; every error names its key path.

`load(path)` returns an `AgentConfig` or raises `ConfigError` carrying one line per problem, e.g.
`collectors.node.interval: must be > 0`. The CLI prints those lines and exits 78 (EX_CONFIG). With no file
the built-in defaults apply, so `gpuwarden agent` runs out of the box.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, create_model, field_validator, model_validator

import gpuwarden.collectors  # noqa: F401  (fills the registry the schema is built from)
from gpuwarden.agent.api_auth import ApiSettings
from gpuwarden.agent.http import Limits
from gpuwarden.agent.registry import REGISTRY, StrictModel
from gpuwarden.fleet.settings import FleetSettings
from gpuwarden.paths import Paths
from gpuwarden.remediations.registry import PLAYBOOKS
from gpuwarden.remediations.section import RemediationSettings

EX_CONFIG = 78


class ConfigError(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def parse_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT` or `[V6]:PORT` → (host, port). Raises ValueError with a readable reason."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host:
        raise ValueError("must be HOST:PORT (IPv6 as [ADDR]:PORT)")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError("must be HOST:PORT (IPv6 as [ADDR]:PORT)")
        host = host[1:-1]
        ipaddress.IPv6Address(host)
    elif ":" in host:
        raise ValueError("an IPv6 address must be written in brackets: [ADDR]:PORT")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError("port must be a number from 0 to 65535")
    return host, int(port_text)


class TLSSettings(StrictModel):
    """HTTPS for /metrics and /health; with `client_ca_file`, mutual TLS (clients need a signed cert)."""

    cert_file: str | None = Field(None, description="PEM server certificate (chain); enables HTTPS")
    key_file: str | None = Field(None, description="PEM private key of `cert_file`")
    client_ca_file: str | None = Field(
        None, description="PEM CA bundle; when set, clients must present a certificate signed by it"
    )

    @field_validator("cert_file", "key_file", "client_ca_file")
    @classmethod
    def _readable(cls, path: str | None) -> str | None:
        # Checked at load, so that check-config fails rather than the agent at start.
        if path is not None:
            try:
                with open(path, "rb"):
                    pass
            except OSError as err:
                raise ValueError(f"cannot read {path}: {err.strerror}") from None
        return path

    @model_validator(mode="after")
    def _pairs(self) -> TLSSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file must be given together")
        if self.client_ca_file and not self.cert_file:
            raise ValueError("client_ca_file needs cert_file and key_file")
        return self

    @property
    def enabled(self) -> bool:
        return self.cert_file is not None


class HTTPSettings(StrictModel):
    """What clients of the agent's HTTP server may cost it; docs/operations.md explains each limit."""

    max_connections: int = Field(1024, ge=16, le=65536, description="open client connections, idle included")
    handler_threads: int = Field(8, ge=1, le=64, description="threads running non-inline request handlers")
    backlog: int = Field(1024, ge=16, le=65535, description="listen() queue (capped at somaxconn)")
    max_header_bytes: int = Field(16384, ge=1024, le=1 << 20, description="request line and headers")
    max_body_bytes: int = Field(1 << 20, ge=0, le=1 << 30, description="request body")
    handshake_timeout: float = Field(5.0, gt=0, le=300, allow_inf_nan=False, description="TLS handshake, s")
    request_timeout: float = Field(10.0, gt=0, le=300, allow_inf_nan=False, description="one request, s")
    idle_timeout: float = Field(120.0, gt=0, le=3600, allow_inf_nan=False, description="keep-alive idle, s")
    write_timeout: float = Field(10.0, gt=0, le=300, allow_inf_nan=False, description="one response, s")

    def limits(self) -> Limits:
        return Limits(**self.model_dump())


class AgentSettings(StrictModel):
    """The agent process itself: where it serves and how it logs."""

    listen: str = Field(
        "127.0.0.1:9837",
        description="HOST:PORT for /metrics, /health, /healthz; IPv6 as [ADDR]:PORT; `--listen` overrides",
    )
    tls: TLSSettings = Field(default_factory=TLSSettings)
    http: HTTPSettings = Field(default_factory=HTTPSettings)
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="log threshold")
    log_format: Literal["text", "json"] = Field(
        "text", description="`text` for people, `json` (one object per line) for journald ingestion"
    )

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        parse_listen(v)
        return v


class PathsSettings(StrictModel):
    """Roots of the host trees the collectors read; in a container, where the host's are mounted."""

    procfs: str = Field("/proc", description="procfs root (meminfo, loadavg, net/dev)")
    sysfs: str = Field("/sys", description="sysfs root (net, infiniband, transparent huge pages)")
    devfs: str = Field("/dev", description="device root (kmsg for XID events)")
    rootfs: str = Field("/", description="host root filesystem, prefixed to disk and model paths")

    def paths(self) -> Paths:
        return Paths(procfs=self.procfs, sysfs=self.sysfs, devfs=self.devfs, rootfs=self.rootfs)


def _collectors_model() -> type[BaseModel]:
    fields: dict[str, Any] = {
        name: (spec.settings, Field(default_factory=spec.settings)) for name, spec in sorted(REGISTRY.items())
    }
    return create_model("CollectorsConfig", __base__=StrictModel, **fields)


CollectorsConfig = _collectors_model()


class AgentConfig(StrictModel):
    agent: AgentSettings = Field(default_factory=AgentSettings)
    paths: PathsSettings = Field(default_factory=PathsSettings)
    collectors: CollectorsConfig = Field(default_factory=CollectorsConfig)  # type: ignore[valid-type]
    fleet: FleetSettings = Field(default_factory=FleetSettings)
    remediation: RemediationSettings = Field(default_factory=RemediationSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)

    @model_validator(mode="after")
    def _fail_open_names_playbooks(self) -> AgentConfig:
        unknown = [n for n in self.fleet.budget.fail_open_playbooks if n not in PLAYBOOKS]
        if unknown:
            raise ValueError(
                f"fleet.budget.fail_open_playbooks: unknown playbook(s) {', '.join(unknown)} "
                f"(known: {', '.join(sorted(PLAYBOOKS))})"
            )
        return self

    def collector_settings(self, name: str) -> Any:
        return getattr(self.collectors, name)


# Pydantic's messages, said the way an operator reads them next to a key path.
_MESSAGES = {
    "extra_forbidden": "unknown key",
    "missing": "required key is missing",
    "greater_than": "must be > {gt:g}",
    "greater_than_equal": "must be >= {ge:g}",
    "less_than": "must be < {lt:g}",
    "less_than_equal": "must be <= {le:g}",
    "literal_error": "must be one of {expected}",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "int_parsing": "must be an integer",
    "int_type": "must be an integer",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
}


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(top level)"


def format_errors(err: ValidationError) -> list[str]:
    problems = []
    for e in err.errors():
        template = _MESSAGES.get(e["type"])
        ctx = e.get("ctx") or {}
        message = template.format(**ctx) if template else str(e["msg"]).removeprefix("Value error, ")
        problems.append(f"{_key_path(e['loc'])}: {message}")
    return problems


def from_mapping(data: object) -> AgentConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(["(top level): must be a mapping"])
    if "doctor" in data:  # the doctor became a collector: say where its keys went, not just "unknown key"
        raise ConfigError(
            [
                "doctor: moved to collectors.doctor (gpu_count is collectors.gpu.expected_gpus; volumes "
                "are collectors.node.disk_paths entries with min_free; export_metrics is "
                "collectors.doctor.enabled and metrics_interval collectors.doctor.interval)"
            ]
        )
    try:
        config = AgentConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_errors(err)) from None
    problems = [line for name in REGISTRY for line in config.collector_settings(name).problems(config)]
    if problems:
        raise ConfigError(problems)
    return config


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load(path: str | None) -> AgentConfig:
    """The config in `path`, or the built-in defaults when `path` is None."""
    if path is None:
        return AgentConfig()
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as err:
        raise ConfigError([f"{path}: cannot read: {err.strerror}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError([f"{path}: not UTF-8 text (byte {err.start})"]) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        problem = getattr(err, "problem", None) or "invalid YAML"
        raise ConfigError([f"{where}: invalid YAML: {problem}"]) from None
    return from_mapping(data)
