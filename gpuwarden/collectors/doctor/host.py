"""Host checks: transparent huge pages, hugepages, memory for the model, free space, network links."""

from __future__ import annotations

import os
from dataclasses import dataclass

from gpuwarden.collectors.doctor.findings import Finding, failed, passed, skipped
from gpuwarden.collectors.doctor.settings import DoctorSettings
from gpuwarden.paths import Paths
from gpuwarden.readers.host import read_thp_mode
from gpuwarden.readers.infiniband import read_ports
from gpuwarden.readers.netdev import read_link

GiB = 1 << 30


@dataclass(frozen=True)
class Volume:
    """A `collectors.node.disk_paths` entry that has a `min_free`."""

    path: str
    min_free: int


def _gib(n: float) -> str:
    return f"{n / GiB:.1f} GiB"


def check_thp(s: DoctorSettings, paths: Paths) -> Finding:
    mode = read_thp_mode(paths)
    if mode is None:
        return skipped("transparent_hugepages", "kernel reports no transparent huge page mode")
    if mode in s.thp_allowed:
        return passed("transparent_hugepages", f"mode {mode}")
    # khugepaged compaction stalls inference threads for milliseconds at a time (NVIDIA and the vLLM /
    # TensorRT-LLM deployment guides recommend THP off on GPU inference hosts).
    return failed(
        "transparent_hugepages",
        f"mode {mode}, allowed: {', '.join(s.thp_allowed)}",
        "echo never > /sys/kernel/mm/transparent_hugepage/enabled; persist with transparent_hugepage=never "
        "on the kernel command line",
    )


def check_hugepages(s: DoctorSettings, meminfo: dict[str, int] | None) -> Finding:
    if s.hugepages is None:
        return skipped("hugepages", "collectors.doctor.hugepages is not set")
    if meminfo is None or "HugePages_Total" not in meminfo:
        return failed("hugepages", "meminfo has no HugePages_Total", "check the procfs mount")
    have = meminfo["HugePages_Total"]
    if have >= s.hugepages:
        return passed("hugepages", f"{have} reserved (need {s.hugepages})")
    return failed(
        "hugepages",
        f"{have} reserved, need {s.hugepages}",
        f"sysctl -w vm.nr_hugepages={s.hugepages}; persist it in /etc/sysctl.d/",
    )


def check_memory(s: DoctorSettings, meminfo: dict[str, int] | None) -> Finding:
    if s.model_size is None:
        return skipped("host_memory", "collectors.doctor.model_size is not set")
    if meminfo is None or "MemTotal" not in meminfo:
        return failed("host_memory", "cannot read MemTotal", "check the procfs mount")
    need, have = s.memory_factor * int(s.model_size), meminfo["MemTotal"]
    detail = f"{_gib(have)} total, need {_gib(need)} ({s.memory_factor:g} x model {_gib(int(s.model_size))})"
    if have >= need:
        return passed("host_memory", detail)
    return failed("host_memory", detail, "use a node with more memory, or a smaller or quantized model")


def check_volumes(volumes: tuple[Volume, ...], paths: Paths) -> list[Finding]:
    if not volumes:
        return [skipped("disk_space", "no collectors.node.disk_paths entry has a min_free")]
    out = []
    for v in volumes:
        name = f"disk_space:{v.path}"
        try:
            st = os.statvfs(paths.root(v.path))
        except OSError as err:
            out.append(failed(name, f"cannot stat: {err.strerror}", f"create or mount {v.path}"))
            continue
        free = st.f_bavail * st.f_frsize
        detail = f"{_gib(free)} free, need {_gib(v.min_free)}"
        if free >= v.min_free:
            out.append(passed(name, detail))
        else:
            out.append(failed(name, detail, f"free space on {v.path} (old checkpoints, rotated logs)"))
    return out


def check_interfaces(expected: list[str], paths: Paths) -> Finding:
    if not expected:
        return skipped("network_interfaces", "collectors.network.expected_interfaces is empty")
    down = []
    for iface in expected:
        if not os.path.isdir(paths.sys("class", "net", iface)):
            down.append(f"{iface} missing")
        elif not (link := read_link(paths, iface)).up:
            down.append(f"{iface} {link.operstate}")
    if down:
        return failed(
            "network_interfaces", ", ".join(down), "ip link set <iface> up; check cabling and switch port"
        )
    return passed("network_interfaces", f"{', '.join(expected)} up")


def check_infiniband(expected: int, paths: Paths) -> Finding:
    if expected == 0:
        return skipped("infiniband_ports", "collectors.network.infiniband_expected_active_ports is 0")
    ports = read_ports(paths)
    up = [p for p in ports if p.up]
    detail = f"{len(up)} of {expected} expected port(s) active"
    if len(up) >= expected:
        return passed("infiniband_ports", detail)
    down = [f"{p.device}/{p.port} {p.state}" for p in ports if not p.up]
    return failed(
        "infiniband_ports",
        detail + (f"; {', '.join(down)}" if down else ""),
        "ibstat; check the subnet manager (opensm) and the cable; mlxlink -d <dev> for the physical link",
    )
