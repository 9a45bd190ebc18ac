"""The Debian package as an SRE rolls it out: `make dist`, `dpkg -i`, check-config, the unit's own ExecStart
as the package's user, an upgrade that keeps an edited config, then remove (config and state stay) and purge.

This installs a real package on the test machine (CI's is fresh and runs as root); it purges it at the end.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.zk_ensemble import free_ports

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
UNIT = Path("/lib/systemd/system/gpuwarden.service")
CONFIG = Path("/etc/gpuwarden/agent.yaml")


def sh(*cmd: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"{shlex.join(cmd)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def installed_version() -> str:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status} ${Version}", "gpuwarden"], capture_output=True, text=True
    )
    return result.stdout if result.returncode == 0 else ""


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Version -1 from `make dist`, and a rebuilt -2 of the same tree (what an upgrade installs)."""
    if os.geteuid() != 0:
        pytest.fail("installing a .deb needs root: CI runs as root")
    for tool in ("dpkg-buildpackage", "dh_virtualenv"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: `make test` installs Debian's build tools (deps-debian)")
    sh("make", "dist", cwd=ROOT)
    first = next((ROOT / "dist").glob("gpuwarden_*-1_*.deb"))
    work = tmp_path_factory.mktemp("rebuild")
    shutil.copytree(ROOT / "build" / "deb" / "gpuwarden", work / "gpuwarden", symlinks=True)
    changelog = work / "gpuwarden" / "debian" / "changelog"
    text = changelog.read_text()
    version = re.match(r"gpuwarden \(([^)]+)-1\)", text)
    assert version, text
    changelog.write_text(text.replace(f"({version[1]}-1)", f"({version[1]}-2)", 1))
    sh("dpkg-buildpackage", "-us", "-uc", "-b", cwd=work / "gpuwarden")
    second = next(work.glob("gpuwarden_*-2_*.deb"))
    return first, second


@pytest.fixture(scope="module")
def clean_machine() -> Iterator[None]:
    subprocess.run(["dpkg", "--purge", "gpuwarden"], capture_output=True)
    yield
    subprocess.run(["dpkg", "--purge", "gpuwarden"], capture_output=True)


def exec_start_as_package_user(port: int) -> subprocess.Popen[bytes]:
    """The installed unit's ExecStart, with its environment file applied, run as `User=` of the unit."""
    unit = UNIT.read_text()
    env = dict(re.findall(r"^Environment=(\w+)=(.*)$", unit, re.M))
    for line in Path("/etc/default/gpuwarden").read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            env[key.strip()] = value.strip()
    user = re.search(r"^User=(\S+)$", unit, re.M)
    command = re.search(r"^ExecStart=(.*)$", unit, re.M)
    assert user and command
    argv = []
    for word in shlex.split(command[1]):
        expanded = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m[1] or m[2], ""), word)
        argv.extend(
            shlex.split(expanded) if word.startswith("$") and not word.startswith("${") else [expanded]
        )
    argv += ["--listen", f"127.0.0.1:{port}"]
    return subprocess.Popen(
        ["runuser", "-u", user[1], "--", *argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def test_install_run_upgrade_remove_and_purge_the_debian_package(
    packages: tuple[Path, Path], clean_machine: None
) -> None:
    first, second = packages

    sh("dpkg", "-i", str(first))
    assert installed_version() == "install ok installed 0.1.0-1"
    assert sh("gpuwarden", "--version").stdout.strip() == "gpuwarden 0.1.0"
    assert Path("/usr/bin/gpuwarden").resolve() == Path("/opt/gpuwarden/bin/gpuwarden")
    user = pwd.getpwnam("gpuwarden")
    assert user.pw_shell == "/usr/sbin/nologin"
    for state in ("/var/lib/gpuwarden", "/var/cache/gpuwarden", "/var/log/gpuwarden"):
        assert Path(state).stat().st_uid == user.pw_uid, state
    assert sh("gpuwarden", "check-config", str(CONFIG)).stdout.strip() == "OK"

    port = free_ports(1)[0]
    agent = exec_start_as_package_user(port)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert agent.poll() is None, (agent.stdout.read() if agent.stdout else b"").decode()
            try:
                reply = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
                if (
                    reply.status_code == 200
                    and 'gpuwarden_collector_success{collector="node"} 1.0' in reply.text
                ):
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "the installed agent never served /metrics"
            time.sleep(0.5)
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=10)

    CONFIG.write_text(CONFIG.read_text() + "\n# edited on this node\n")
    sh("dpkg", "-i", "--force-confold", str(second))
    assert installed_version() == "install ok installed 0.1.0-2"
    assert CONFIG.read_text().endswith("# edited on this node\n"), "the upgrade replaced a local edit"
    Path("/var/lib/gpuwarden/keep-me").write_text("state")

    sh("dpkg", "--remove", "gpuwarden")
    assert not Path("/opt/gpuwarden/bin/gpuwarden").exists()
    assert CONFIG.read_text().endswith("# edited on this node\n"), "remove must keep the config"
    assert Path("/var/lib/gpuwarden/keep-me").exists(), "remove must keep the state"

    sh("dpkg", "--purge", "gpuwarden")
    assert installed_version() == ""
    assert not CONFIG.parent.exists()
    assert not Path("/var/lib/gpuwarden").exists()
