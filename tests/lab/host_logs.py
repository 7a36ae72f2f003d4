"""What the lab hosts' own logs say a run did: connections, commands and WinRM shells.

Linux hosts run sshd with ``LogLevel VERBOSE``: one ``Accepted publickey`` line per SSH
connection and one ``Starting session: command`` line per command (multiplexed sessions
included). The WinRM emulator logs one line per shell created and per command. Counting the
lines a run added tells how often the suite connected to each host and what it asked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import yaml

from lab.fleet import Host, expand_fleet
from lab.paths import LabPaths
from lab.profiles import load_profiles


@dataclass(frozen=True)
class Activity:
    """Connections (SSH logins or WinRM shells) and commands seen in a host's log."""

    connections: int
    commands: int


def _log(paths: LabPaths, host: Host) -> str:
    hdir = paths.host_dir(host.name)
    path = hdir / "log" / "sshd.log" if host.platform == "linux" else hdir / "winrm.log"
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def activity(paths: LabPaths, host: Host) -> Activity:
    """Return the connections and commands recorded in ``host``'s log so far."""
    text = _log(paths, host)
    if host.platform == "linux":
        return Activity(
            connections=text.count("Accepted publickey"),
            commands=text.count("Starting session: command"),
        )
    lines = text.splitlines()
    return Activity(
        connections=sum(1 for line in lines if " created for " in line and ": shell " in line),
        commands=sum(1 for line in lines if ": command " in line and " in shell " in line),
    )


def snapshot(paths: LabPaths, hosts: Iterable[Host]) -> dict[str, Activity]:
    """Return :func:`activity` of every host, by name."""
    return {h.name: activity(paths, h) for h in hosts}


def delta(before: dict[str, Activity], after: dict[str, Activity]) -> dict[str, Activity]:
    """Return what each host's log gained between two snapshots."""
    return {
        name: Activity(
            after[name].connections - before[name].connections,
            after[name].commands - before[name].commands,
        )
        for name in after
    }


def running_fleet(paths: LabPaths) -> list[Host]:
    """Return the hosts of the running default fleet (rebuilt from its inventory's size)."""
    groups = yaml.safe_load(paths.inventory.read_text(encoding="utf-8"))["all"]["children"]
    count = sum(len(groups[g]["hosts"] or {}) for g in ("linux", "windows"))
    return expand_fleet(load_profiles(), count)
