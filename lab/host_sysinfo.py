"""The CPU, memory and load a Linux lab host reports, written as /proc and /sys files.

All lab hosts share this machine's kernel, so without help every host would report the
controller's CPUs, memory and load. Each host's init bind-mounts these files over
``/proc/cpuinfo``, ``/proc/meminfo``, ``/proc/loadavg`` and ``/sys/devices/system/cpu/online``
and runs under a CPU affinity of the same size, so that ``nproc``, ``/proc/cpuinfo`` and
``/proc/meminfo`` agree with the host's profile.
"""

from __future__ import annotations

import re
from pathlib import Path

from lab.profiles import Profile

FALLBACK_CPU_BLOCK = (
    "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\n"
    "model name\t: Intel(R) Xeon(R) Platinum 8272CL CPU @ 2.60GHz\nphysical id\t: 0\n"
    "siblings\t: 1\ncore id\t\t: 0\ncpu cores\t: 1\napicid\t\t: 0\n"
)


def _first_cpu_block(real_cpuinfo: str) -> str:
    block = real_cpuinfo.strip().split("\n\n")[0]
    return block if block.startswith("processor") else FALLBACK_CPU_BLOCK.strip()


def cpuinfo(cpus: int, real_cpuinfo: str) -> str:
    """Return /proc/cpuinfo text with ``cpus`` processor entries, cloned from the real first."""
    template = _first_cpu_block(real_cpuinfo)
    blocks = []
    for i in range(cpus):
        block = re.sub(r"^(processor\s*:).*$", rf"\g<1> {i}", template, flags=re.M)
        block = re.sub(r"^((?:initial )?apicid\s*:).*$", rf"\g<1> {i}", block, flags=re.M)
        block = re.sub(r"^(core id\s*:).*$", rf"\g<1> {i}", block, flags=re.M)
        block = re.sub(r"^(siblings\s*:|cpu cores\s*:).*$", rf"\g<1> {cpus}", block, flags=re.M)
        blocks.append(block)
    return "\n\n".join(blocks) + "\n\n"


def meminfo(memory_mb: int, available_mb: int) -> str:
    """Return /proc/meminfo text whose MemTotal/MemFree/MemAvailable follow the profile."""
    total = memory_mb * 1024
    available = available_mb * 1024
    free = available * 3 // 4
    cached = available - free
    used = total - available
    rows = [
        ("MemTotal", total),
        ("MemFree", free),
        ("MemAvailable", available),
        ("Buffers", cached // 8),
        ("Cached", cached - cached // 8),
        ("SwapCached", 0),
        ("Active", used // 2),
        ("Inactive", used // 4),
        ("SwapTotal", 0),
        ("SwapFree", 0),
        ("Dirty", 0),
        ("Writeback", 0),
        ("AnonPages", used // 2),
        ("Mapped", used // 16),
        ("Shmem", 1024),
        ("Slab", used // 16),
        ("CommitLimit", total // 2),
        ("Committed_AS", used),
        ("HugePages_Total", 0),
        ("Hugepagesize", 2048),
    ]
    out = []
    for key, value in rows:
        unit = "" if key.startswith("HugePages_") else " kB"
        out.append(f"{key + ':':<16}{value:>8}{unit}")
    return "\n".join(out) + "\n"


def loadavg(load: float) -> str:
    """Return /proc/loadavg text with the profile's load as the 1, 5 and 15 minute averages."""
    return f"{load:.2f} {load:.2f} {load:.2f} 1/96 4242\n"


def cpu_online(cpus: int) -> str:
    """Return /sys/devices/system/cpu/online text for CPUs 0 .. cpus-1."""
    return "0\n" if cpus == 1 else f"0-{cpus - 1}\n"


def cpu_list(cpus: int) -> str:
    """Return the taskset CPU list that gives the host ``cpus`` CPUs."""
    return ",".join(str(i) for i in range(cpus))


def write_sysinfo(directory: Path, profile: Profile) -> dict[str, Path]:
    """Write the host's fake /proc and /sys files; return {mount target: file} to bind."""
    directory.mkdir(parents=True, exist_ok=True)
    real = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    files = {
        "/proc/cpuinfo": ("cpuinfo", cpuinfo(profile["cpus"], real)),
        "/proc/meminfo": ("meminfo", meminfo(profile["memory_mb"], profile["memory_available_mb"])),
        "/proc/loadavg": ("loadavg", loadavg(float(profile["load"]))),
        "/sys/devices/system/cpu/online": ("cpu-online", cpu_online(profile["cpus"])),
    }
    result = {}
    for target, (name, text) in files.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        path.chmod(0o444)
        result[target] = path
    return result
