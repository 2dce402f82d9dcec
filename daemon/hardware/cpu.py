"""CPU cores and RAM the process may use.

Linux: logical CPUs from ``/sys/devices/system/cpu/online``; physical cores from
the distinct (package, core) pairs in ``cpu*/topology``; the affinity mask from
``os.sched_getaffinity`` (or, under an injected root, ``Cpus_allowed_list`` in
``/proc/self/status``); RAM from ``/proc/meminfo``; and the cgroup limits of
this process's cgroup and its ancestors (v2 ``memory.max`` / ``cpu.max``, v1
``memory.limit_in_bytes`` / ``cpu.cfs_quota_us``), which win when lower.
macOS: ``sysctl`` and ``vm_stat``.
"""

from __future__ import annotations

import os
import re

from .metal import sysctl
from .report import CPUInfo
from .sources import ProbeError, ProbeSources

_KIB = 1024


def detect_cpu(sources: ProbeSources) -> tuple[CPUInfo, tuple[str, ...]]:
    if sources.system == "Darwin":
        return _detect_darwin(sources)
    return _detect_linux(sources)


def parse_cpu_list(text: str) -> set[int]:
    """Kernel CPU list syntax: ``0-3,8,10-11``."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        low, _, high = part.partition("-")
        if high:
            cpus.update(range(int(low), int(high) + 1))
        else:
            cpus.add(int(low))
    return cpus


def parse_meminfo(text: str) -> dict[str, int]:
    """``/proc/meminfo`` → bytes per field."""
    values = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():
            scale = _KIB if len(fields) > 1 and fields[1].lower() == "kb" else 1
            values[name.strip()] = int(fields[0]) * scale
    return values


def _detect_linux(sources: ProbeSources) -> tuple[CPUInfo, tuple[str, ...]]:
    problems: list[str] = []
    online_text = sources.read_text("/sys/devices/system/cpu/online")
    cpuinfo = sources.read_text("/proc/cpuinfo") or ""
    if online_text:
        online = parse_cpu_list(online_text)
    else:
        online = {int(p.name[3:]) for p in sources.glob("/sys/devices/system/cpu/cpu*") if p.name[3:].isdigit()}
    if not online:
        processors = re.findall(r"^processor\s*:\s*(\d+)", cpuinfo, flags=re.MULTILINE)
        online = {int(n) for n in processors}
    if not online:
        problems.append("CPU: cannot count CPUs under /sys or /proc; assuming 1")
        online = {0}
    cores = set()
    for cpu in sorted(online):
        package = sources.read_int(f"/sys/devices/system/cpu/cpu{cpu}/topology/physical_package_id")
        core = sources.read_int(f"/sys/devices/system/cpu/cpu{cpu}/topology/core_id")
        if core is not None:
            cores.add((package, core))
    physical = len(cores) or _physical_from_cpuinfo(cpuinfo) or len(online)
    affinity = _affinity(sources)
    usable = len(affinity & online) if affinity else len(online)
    model_match = re.search(r"^(?:model name|Model|Hardware)\s*:\s*(.+)$", cpuinfo, flags=re.MULTILINE)
    model = model_match.group(1).strip() if model_match else "unknown CPU"

    meminfo_text = sources.read_text("/proc/meminfo")
    meminfo = parse_meminfo(meminfo_text or "")
    total = meminfo.get("MemTotal", 0)
    available = meminfo.get("MemAvailable", meminfo.get("MemFree", 0))
    if not total:
        problems.append("RAM: /proc/meminfo is missing or has no MemTotal")
    limit, current, quota = _cgroup_limits(sources)
    if limit is not None:
        total = min(total, limit) if total else limit
        headroom = max(0, limit - (current or 0))
        available = min(available, headroom) if available else headroom
    return (
        CPUInfo(
            model=model,
            physical_cores=physical,
            logical_cores=len(online),
            usable_cores=max(1, usable),
            ram_total_bytes=total,
            ram_available_bytes=available,
            cpu_quota=quota,
            memory_limit_bytes=limit,
        ),
        tuple(problems),
    )


def _physical_from_cpuinfo(cpuinfo: str) -> int:
    pairs = set()
    package = core = None
    for line in cpuinfo.splitlines() + [""]:
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            package = value.strip()
        elif key == "core id":
            core = value.strip()
        elif not line.strip():
            if core is not None:
                pairs.add((package, core))
            package = core = None
    return len(pairs)


def _affinity(sources: ProbeSources) -> set[int]:
    if sources.is_real_root and hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    status = sources.read_text("/proc/self/status") or ""
    match = re.search(r"^Cpus_allowed_list:\s*(\S+)", status, flags=re.MULTILINE)
    return parse_cpu_list(match.group(1)) if match else set()


def _cgroup_limits(sources: ProbeSources) -> tuple[int | None, int | None, float | None]:
    """(memory limit, memory in use, CPU quota in CPUs) of this process's cgroup.

    cgroup v2 (``0::/path``) reads ``memory.max`` / ``memory.current`` / ``cpu.max``;
    cgroup v1 hierarchies (``N:memory:/path``, ``N:cpu,cpuacct:/path``) read
    ``memory.limit_in_bytes`` / ``memory.usage_in_bytes`` / ``cpu.cfs_quota_us``.
    Every ancestor's limit applies, so the tightest one along the path wins.
    """
    membership = sources.read_text("/proc/self/cgroup") or ""
    limit = current = None
    quota: float | None = None
    for line in membership.splitlines():
        _, _, rest = line.partition(":")
        controllers, _, relative = rest.partition(":")
        names = set(controllers.split(",")) if controllers else set()
        if not controllers:
            files = [("/sys/fs/cgroup", "memory.max", "memory.current", "cpu.max")]
        else:
            files = []
            if "memory" in names:
                files.append(("/sys/fs/cgroup/memory", "memory.limit_in_bytes", "memory.usage_in_bytes", ""))
            if "cpu" in names:
                controller_dir = "/sys/fs/cgroup/" + controllers
                files.append((controller_dir, "", "", "cpu.cfs_quota_us"))
        for mount, limit_file, usage_file, cpu_file in files:
            for folder in _ancestors(mount, relative):
                if limit_file:
                    value = _limit_value(sources.read_text(f"{folder}/{limit_file}"))
                    if value is not None and (limit is None or value < limit):
                        limit = value
                        current = sources.read_int(f"{folder}/{usage_file}")
                if cpu_file:
                    cpus = _cpu_quota(sources, folder, cpu_file)
                    if cpus is not None:
                        quota = cpus if quota is None else min(quota, cpus)
    return limit, current, quota


def _ancestors(mount: str, relative: str) -> list[str]:
    """The cgroup folder and each parent up to the mount point (inside a container only some exist)."""
    parts = [p for p in relative.split("/") if p]
    return [("/".join([mount, *parts[:depth]])) for depth in range(len(parts), -1, -1)]


# cgroup v1 spells "no limit" as a huge page-aligned number close to 2**63.
_V1_UNLIMITED = 1 << 62


def _limit_value(text: str | None) -> int | None:
    if not text or not text.strip().isdigit():
        return None  # missing, or "max"
    value = int(text.strip())
    return None if value >= _V1_UNLIMITED else value


def _cpu_quota(sources: ProbeSources, folder: str, cpu_file: str) -> float | None:
    if cpu_file == "cpu.max":
        fields = (sources.read_text(f"{folder}/cpu.max") or "").split()
        if len(fields) == 2 and fields[0].isdigit() and fields[1].isdigit() and int(fields[1]) > 0:
            return int(fields[0]) / int(fields[1])
        return None
    quota = sources.read_text(f"{folder}/cpu.cfs_quota_us")
    period = sources.read_int(f"{folder}/cpu.cfs_period_us")
    if quota and quota.strip().isdigit() and period:
        return int(quota.strip()) / period
    return None  # "-1": no quota


def _detect_darwin(sources: ProbeSources) -> tuple[CPUInfo, tuple[str, ...]]:
    problems: list[str] = []

    def number(key: str) -> int | None:
        try:
            return int(sysctl(sources, key))
        except (ProbeError, ValueError) as exc:
            problems.append(f"CPU: sysctl {key}: {exc}")
            return None

    logical = number("hw.logicalcpu") or 1
    physical = number("hw.physicalcpu") or logical
    total = number("hw.memsize") or 0
    try:
        model = sysctl(sources, "machdep.cpu.brand_string") or "unknown CPU"
    except ProbeError:
        model = "unknown CPU"
    available = total
    vm_stat = sources.which("vm_stat")
    if vm_stat:
        try:
            available = min(total, parse_vm_stat_available(sources.run([vm_stat])))
        except ProbeError as exc:
            problems.append(f"RAM: {exc}")
    else:
        problems.append("RAM: vm_stat is not on PATH; assuming all RAM is available")
    return (
        CPUInfo(
            model=model,
            physical_cores=physical,
            logical_cores=logical,
            usable_cores=logical,
            ram_total_bytes=total,
            ram_available_bytes=available,
        ),
        tuple(problems),
    )


def parse_vm_stat_available(text: str) -> int:
    """Reclaimable memory from ``vm_stat``: free + inactive + speculative + purgeable pages."""
    size_match = re.search(r"page size of (\d+) bytes", text)
    if not size_match:
        raise ProbeError("vm_stat output has no page size line")
    page = int(size_match.group(1))
    pages = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        value = value.strip().rstrip(".")
        if value.isdigit():
            pages[name.strip()] = int(value)
    wanted = ("Pages free", "Pages inactive", "Pages speculative", "Pages purgeable")
    return sum(pages.get(name, 0) for name in wanted) * page
