"""The one typed config (YAML), validated as a whole; every error names its key path.

`load(path)` returns an `AgentConfig` or raises `ConfigError` carrying one line per problem, e.g.
`collectors.node.interval: must be > 0`. The CLI prints those lines and exits 78 (EX_CONFIG). With no file
the built-in defaults apply, so `gpuwarden agent` runs out of the box.

Sections for registered things are built from their registries (`collectors` from the collector
registry), which never import this module; rules that span sections are validators on `AgentConfig`; files
the agent opens at start (TLS material) are checked here, so a missing one is exit 78, not a restart loop.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationError, field_validator, model_validator

import gpuwarden.collectors  # noqa: F401  (fills the registry the `collectors` section is built from)
from gpuwarden.address import check_listen
from gpuwarden.agent.api_auth import ApiSettings
from gpuwarden.agent.http import Limits
from gpuwarden.agent.registry import REGISTRY
from gpuwarden.config_base import (
    EX_CONFIG,
    ConfigError,
    StrictModel,
    cross_section_error,
    format_errors,
    readable_file,
    section_model,
)
from gpuwarden.fleet.settings import FleetSettings
from gpuwarden.paths import Paths
from gpuwarden.remediations.registry import PLAYBOOKS
from gpuwarden.remediations.section import RemediationSettings

__all__ = ["EX_CONFIG", "AgentConfig", "ConfigError", "from_mapping", "load"]

ReadableFile = Annotated[str, AfterValidator(readable_file)]


class TLSSettings(StrictModel):
    """HTTPS for /metrics and /health; with `client_ca_file`, mutual TLS (clients need a signed cert)."""

    cert_file: ReadableFile | None = Field(None, description="PEM server certificate (chain); enables HTTPS")
    key_file: ReadableFile | None = Field(None, description="PEM private key of `cert_file`")
    client_ca_file: ReadableFile | None = Field(
        None, description="PEM CA bundle; when set, clients must present a certificate signed by it"
    )

    @model_validator(mode="before")
    @classmethod
    def _pairs(cls, data: Any) -> Any:
        """Before the files are looked at: a half-given pair is the problem to report, not a missing file."""
        if isinstance(data, dict):
            if (data.get("cert_file") is None) != (data.get("key_file") is None):
                raise ValueError("cert_file and key_file must be given together")
            if data.get("client_ca_file") is not None and data.get("cert_file") is None:
                raise ValueError("client_ca_file needs cert_file and key_file")
        return data

    @model_validator(mode="after")
    def _usable(self) -> TLSSettings:
        if self.cert_file is None or self.key_file is None:
            return self
        # Load them as the server will, so a bad PEM or a key of another certificate is exit 78 here and
        # not a failed start. An encrypted key gets an empty passphrase, never a prompt on the terminal.
        import ssl  # here: only a config with TLS loads it (bench/footprint.py)

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(self.cert_file, self.key_file, password=lambda: b"")
        except (ssl.SSLError, OSError) as err:
            raise ValueError(f"cannot use cert_file with key_file: {err}") from None
        if self.client_ca_file:
            try:
                context.load_verify_locations(cafile=self.client_ca_file)
            except (ssl.SSLError, OSError) as err:
                raise ValueError(f"cannot use client_ca_file: {err}") from None
        return self

    @property
    def enabled(self) -> bool:
        return self.cert_file is not None


class HTTPSettings(StrictModel):
    """What clients of the agent's HTTP server may cost it; docs/operations.md explains each limit."""

    max_connections: int = Field(1024, ge=16, le=65536, description="open client connections, idle included")
    handler_threads: int = Field(8, ge=1, le=64, description="threads running non-inline request handlers")
    backlog: int = Field(1024, ge=16, le=65535, description="listen() queue (capped at somaxconn)")
    max_header_bytes: int = Field(
        16384, ge=1024, le=1 << 20, description="bytes of request line and headers (431 past it)"
    )
    max_body_bytes: int = Field(
        1 << 20, ge=0, le=1 << 30, description="bytes of request body (413 past it, unread)"
    )
    handshake_timeout: float = Field(
        5.0, gt=0, le=300, allow_inf_nan=False, description="seconds for a TLS handshake"
    )
    request_timeout: float = Field(
        10.0, gt=0, le=300, allow_inf_nan=False, description="seconds from a request's first byte to its last"
    )
    idle_timeout: float = Field(
        120.0, gt=0, le=3600, allow_inf_nan=False, description="seconds a keep-alive connection may idle"
    )
    write_timeout: float = Field(
        10.0, gt=0, le=300, allow_inf_nan=False, description="seconds for a client to take its response"
    )

    def limits(self) -> Limits:
        return Limits(**self.model_dump())


class AgentSettings(StrictModel):
    """The agent process itself: where it serves and how it logs."""

    listen: Annotated[str, AfterValidator(check_listen)] = Field(
        "127.0.0.1:9837",
        description="HOST:PORT for /metrics, /health, /healthz; IPv6 as [ADDR]:PORT; `--listen` overrides",
    )
    tls: TLSSettings = Field(default_factory=TLSSettings)
    http: HTTPSettings = Field(default_factory=HTTPSettings)
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="log threshold")
    log_format: Literal["text", "json"] = Field(
        "text", description="`text` for people, `json` (one object per line) for journald ingestion"
    )


class PathsSettings(StrictModel):
    """Roots of the host trees the collectors read; in a container, where the host's are mounted."""

    procfs: str = Field("/proc", description="procfs root (meminfo, loadavg, net/dev)")
    sysfs: str = Field("/sys", description="sysfs root (net, infiniband, transparent huge pages)")
    devfs: str = Field("/dev", description="device root (kmsg for XID events)")
    rootfs: str = Field("/", description="host root filesystem, prefixed to disk and model paths")

    @field_validator("procfs", "sysfs", "devfs", "rootfs")
    @classmethod
    def _no_nul(cls, v: str) -> str:
        if "\0" in v:
            raise ValueError("must not contain a NUL character")
        return v

    def paths(self) -> Paths:
        return Paths(procfs=self.procfs, sysfs=self.sysfs, devfs=self.devfs, rootfs=self.rootfs)


CollectorsSettings = section_model(
    "CollectorsSettings",
    {name: spec.settings for name, spec in REGISTRY.items()},
    "One key per registered collector, each with its own settings.",
)


class AgentConfig(StrictModel):
    agent: AgentSettings = Field(default_factory=AgentSettings)
    paths: PathsSettings = Field(default_factory=PathsSettings)
    collectors: CollectorsSettings = Field(default_factory=CollectorsSettings)  # type: ignore[valid-type]
    fleet: FleetSettings = Field(default_factory=FleetSettings)
    remediation: RemediationSettings = Field(default_factory=RemediationSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)

    def collector_settings(self, name: str) -> Any:
        return getattr(self.collectors, name)

    @model_validator(mode="after")
    def _across_sections(self) -> AgentConfig:
        """Rules that need two sections; each problem names the key to fix."""
        problems: list[tuple[str, str]] = []
        zookeeper = self.collector_settings("zookeeper")
        if zookeeper.enabled and not zookeeper.servers and not self.fleet.hosts:
            problems.append(
                ("collectors.zookeeper.servers", "name the ensemble's servers (or set fleet.hosts)")
            )
        unknown = [n for n in self.fleet.budget.fail_open_playbooks if n not in PLAYBOOKS]
        if unknown:
            known = ", ".join(sorted(PLAYBOOKS))
            problems.append(
                (
                    "fleet.budget.fail_open_playbooks",
                    f"unknown playbook(s) {', '.join(unknown)} (known: {known})",
                )
            )
        if problems:
            raise cross_section_error(problems)
        return self


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
        return AgentConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_errors(err)) from None


def load(path: str | None) -> AgentConfig:
    """The config in `path`, or the built-in defaults when `path` is None."""
    if path is None:
        return AgentConfig()
    from gpuwarden.config_file import read_yaml  # PyYAML loads with a file to read (bench/footprint.py)

    return from_mapping(read_yaml(path))
