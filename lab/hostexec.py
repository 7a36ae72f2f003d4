"""Run commands inside a running lab host, bypassing SSH (for the lab's own tests).

A Linux host is four namespaces (network, mount, pid, uts) rooted at the PID 1 its launcher
forked; ``nsenter`` into that process sees exactly what the host's sshd sessions see.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from lab.fleet import NETNS_PREFIX
from lab.paths import LabPaths


class HostNotRunning(RuntimeError):
    """The host's launcher or init is gone; the message names the host."""


def launcher_pid(paths: LabPaths, host_name: str) -> int:
    """Return the pid of the host's launcher (recorded in .lab/pids/hrw-<name>.pid)."""
    pid_file = paths.pids / f"{NETNS_PREFIX}{host_name}.pid"
    try:
        return int(pid_file.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        raise HostNotRunning(f"{host_name}: no pid recorded in {pid_file}") from None


def init_pid(paths: LabPaths, host_name: str) -> int:
    """Return the root-namespace pid of a Linux host's PID 1 (the launcher's only child)."""
    pid = launcher_pid(paths, host_name)
    children = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        kids = children.read_text(encoding="utf-8").split()
    except OSError:
        raise HostNotRunning(f"{host_name}: launcher {pid} is not running") from None
    if not kids:
        raise HostNotRunning(f"{host_name}: launcher {pid} has no init process")
    return int(kids[0])


def run_in_host(
    paths: LabPaths, host_name: str, argv: Sequence[str], timeout: float = 20.0
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` inside a Linux host's namespaces; return the completed process.

    The command also gets the host's CPU affinity, as everything started inside the host
    (sshd sessions included) inherits it from the host's init.
    """
    pid = init_pid(paths, host_name)
    cpus = ",".join(str(c) for c in sorted(os.sched_getaffinity(pid)))
    command = ["nsenter", "-t", str(pid), "-n", "-m", "-p", "-u", "--", "taskset", "-c", cpus]
    command += list(argv)
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def run_in_netns(
    host_name: str, argv: Sequence[str], timeout: float = 20.0
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in a host's network namespace only (works for Windows hosts too)."""
    command = ["ip", "netns", "exec", f"{NETNS_PREFIX}{host_name}", *argv]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
