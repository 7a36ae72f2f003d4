"""Print the running lab's size: hosts, processes and their resident memory.

``python -m lab.footprint`` is the command behind the README's lab memory figures. Every
process the lab runs lives in one of its ``hrw-`` network namespaces, so the namespaces'
process lists are the lab's processes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lab.fleet import NETNS_PREFIX


def lab_namespaces() -> list[str]:
    """Return the names of the lab's network namespaces."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    names = (line.split()[0] for line in out.stdout.splitlines() if line.strip())
    return sorted(n for n in names if n.startswith(NETNS_PREFIX))


def namespace_pids(name: str) -> list[int]:
    """Return the pids of the processes in network namespace ``name``."""
    out = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split() if p.isdigit()]


def rss_kib(pid: int) -> int:
    """Return a process's resident set size in KiB (0 if it has gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def main() -> int:
    """Print one line: namespaces, processes and their summed RSS in MiB."""
    namespaces = lab_namespaces()
    if not namespaces:
        print("lab.footprint: the lab is not up", file=sys.stderr)
        return 1
    pids = sorted({pid for ns in namespaces for pid in namespace_pids(ns)})
    total = sum(rss_kib(pid) for pid in pids)
    print(
        f"lab: {len(namespaces)} namespaces, {len(pids)} processes, RSS sum {total / 1024:.0f} MiB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
