"""What the agent does not load until a feature needs it (bench/footprint.py measures what that saves):
requests (~5 MB with urllib3 and charset_normalizer), kazoo (the fleet, the engine's budget), grafanalib
(`dashboards build`), the remediation engine and the /v1 API; ssl and http.client (TLS, reads from other
programs), prometheus_client's HTTP servers (gpuwarden/deferred.py), OpenSSL's libcrypto through
`_hashlib` (tokens, model-file checksums; deferred.py), PyYAML (a config file), asyncio (nothing of the
agent's uses it since the stdlib scheduler replaced APScheduler). A fresh interpreter each time: this
process has them all."""

from __future__ import annotations

import subprocess
import sys

HEAVY = (
    "requests",
    "urllib3",
    "kazoo",
    "grafanalib",
    "gpuwarden.remediations.engine",
    "gpuwarden.agent.api",
    "matplotlib",
    "ssl",
    "http.client",
    "http.server",
    "prometheus_client.exposition",
    "yaml",
    "asyncio",
    "_hashlib",
)

# What `gpuwarden agent` with the default config imports before its first collection.
AGENT_START = """
import logging, sys
from gpuwarden import cli, config
cli.build_parser()
from gpuwarden.agent import daemon
from gpuwarden.agent.context import build_collector
cfg = config.load(None)
for name in cfg.collectors.model_fields:
    if cfg.collector_settings(name).enabled:
        build_collector(name, cfg, logging.getLogger("t"))
print(" ".join(m for m in {heavy!r} if m in sys.modules))
"""


def test_the_default_agent_loads_no_optional_library_before_its_first_collection() -> None:
    code = AGENT_START.format(heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [], f"loaded at start: {out.stdout.strip()}"


def test_the_check_catches_a_module_that_does_load() -> None:
    code = AGENT_START.format(heavy=HEAVY).replace("cli.build_parser()", "cli.build_parser(); import kazoo")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["kazoo"]
