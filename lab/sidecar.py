"""Extra lab hosts started next to the running fleet, for failure tests.

The default fleet (``python -m lab up``) is exactly the profiles of the acceptance table.
Failure modes (a host that hangs after connecting, one that drops the connection mid-probe,
a non-root login, a wedged WinRM service) are profiles too, kept in ``lab/profiles/extra/``
so that they never join that fleet. :func:`start` brings some of them up alongside a
running lab, on addresses from ``10.213.200.10`` on (far above any fleet host), with their
own known_hosts and inventory under ``.lab/extra/``; :func:`stop` removes them again.
``python -m lab down`` removes them as well (they are ``hrw-`` namespaces and lab processes).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lab import linux_host, windows_host
from lab.context import LabContext
from lab.control import _record_pid, _sshd_uid, prepare_hosts, read_state, wait_ready
from lab.fleet import Host, expand_fleet
from lab.inventory_writer import linux_vars, windows_vars
from lab.netns import (
    Namespace,
    configure_inside,
    create_namespaces,
    delete_namespaces,
    kill_pids,
    run,
)
from lab.paths import LabPaths
from lab.pki import PkiFiles
from lab.profiles import PROFILES_DIR, ProfileError, load_profiles
from lab.sshkeys import public_key_of

EXTRA_DIR = PROFILES_DIR / "extra"
# Host index 39800 is 10.213.200.10 (docs/design.md section 3): no fleet reaches it.
# Extra profiles take 39800.. and copies of the fleet's profiles 39900.. (10.213.200.110..).
FIRST_INDEX = 39800
COPIES_INDEX = 39900
MAX_COPIES = 90


class SidecarError(RuntimeError):
    """Extra hosts cannot be started; the message is one line saying why."""


@dataclass(frozen=True)
class Sidecar:
    """Extra hosts that are running, and the files that describe them."""

    hosts: list[Host]
    inventory: Path
    known_hosts: Path


def sidecar_dir(paths: LabPaths) -> Path:
    """Return ``.lab/extra/``, where the extra hosts' known_hosts and inventory live."""
    return paths.state / "extra"


def running_context(paths: LabPaths) -> LabContext:
    """Return the running lab's context (its PKI, key and passwords), read from its state.

    Raises SidecarError when the lab is not up: extra hosts need its bridge and services.
    """
    state = read_state(paths)
    if state is None or not paths.inventory.exists():
        raise SidecarError("the lab is not up; run `python -m lab up` first")
    return LabContext(
        paths=paths,
        pki=PkiFiles(paths.pki),
        proxy_password=str(state["proxy_password"]),
        winrm_password=str(state["winrm_password"]),
        lab_public_key=public_key_of(paths.ssh_key),
        sshd_uid=_sshd_uid(),
    )


def extra_hosts(names: Sequence[str]) -> list[Host]:
    """Return hosts for the named extra profiles, each on its own sidecar address."""
    profiles = load_profiles(EXTRA_DIR, defaults_dir=PROFILES_DIR).profiles
    unknown = [n for n in names if n not in profiles]
    if unknown:
        raise ProfileError(f"{EXTRA_DIR}: no profile {unknown[0]!r}")
    order = sorted(profiles)
    return [Host(name=n, index=FIRST_INDEX + order.index(n), profile=profiles[n]) for n in names]


def fleet_copies(count: int) -> list[Host]:
    """Return ``count`` more hosts of the default fleet's profiles (``copy<k>-<profile>``).

    They let a test run a fleet larger than the running one without restarting it.
    """
    if not 0 <= count <= MAX_COPIES:
        raise ProfileError(f"fleet copies: {count} is out of range 0 .. {MAX_COPIES}")
    base = expand_fleet(load_profiles(), count) if count else []
    return [
        Host(name=f"copy{k}-{h.profile.name}", index=COPIES_INDEX + k, profile=h.profile)
        for k, h in enumerate(base)
    ]


def _inventory(hosts: list[Host], ctx: LabContext, known_hosts: Path) -> dict[str, Any]:
    linux: dict[str, Any] = {}
    windows: dict[str, Any] = {}
    for host in hosts:
        if host.platform == "linux":
            hv = linux_vars(host, ctx.paths)
            hv["ansible_user"] = host.profile["ssh_login_user"]
            hv["ansible_ssh_common_args"] = (
                f"-o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes"
            )
            linux[host.name] = hv
        else:
            windows[host.name] = windows_vars(host, ctx.paths, ctx.winrm_password, ctx.proxy_url)
    return {
        "all": {
            "vars": {"hrw_trusted_ca_file": str(ctx.paths.trusted_cas)},
            "children": {"linux": {"hosts": linux}, "windows": {"hosts": windows}},
        }
    }


def start(paths: LabPaths, hosts: Sequence[Host], timeout: float = 60.0) -> Sidecar:
    """Start ``hosts`` (from :func:`extra_hosts` / :func:`fleet_copies`) next to the running
    lab; return them and their inventory and known_hosts files.

    Hosts of the same names left by an earlier start are removed first. Raises SidecarError
    when a host does not come up.
    """
    ctx = running_context(paths)
    hosts = list(hosts)
    stop(paths, hosts)
    directory = sidecar_dir(paths)
    directory.mkdir(parents=True, exist_ok=True)

    known = prepare_hosts(hosts, ctx)
    known_hosts = directory / "known_hosts"
    previous = known_hosts.read_text(encoding="utf-8").splitlines() if known_hosts.exists() else []
    addresses = {h.address for h in hosts}
    kept = [line for line in previous if line.split(" ", 1)[0] not in addresses]
    known_hosts.write_text("\n".join([*kept, *known]) + "\n", encoding="utf-8")
    namespaces = [
        Namespace(h.netns, h.veth, h.address, block_azure_443=h.profile["network"] == "blocked")
        for h in hosts
    ]
    create_namespaces(namespaces)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(configure_inside, namespaces))
    targets: dict[str, tuple[int, list[tuple[str, int]], Path]] = {}
    for host in hosts:
        hdir = paths.host_dir(host.name)
        if host.platform == "linux":
            pid = linux_host.start(host, ctx)
            targets[host.name] = (pid, [(host.address, 22)], hdir / "log" / "init.log")
        else:
            pid = windows_host.start(host, ctx)
            targets[host.name] = (
                pid,
                [(host.address, windows_host.HTTPS_PORT)],
                hdir / "winrm.log",
            )
        _record_pid(paths, host.netns, pid)
    failures = wait_ready(targets, timeout=timeout)
    if failures:
        stop(paths, hosts)
        name, reason = next(iter(failures.items()))
        raise SidecarError(f"extra host {name} did not start: {reason}")
    inventory = directory / f"inventory-{'-'.join(sorted(h.name for h in hosts))[:120]}.yml"
    fd = os.open(inventory, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yaml.safe_dump(_inventory(hosts, ctx, known_hosts), handle, sort_keys=False)
    return Sidecar(hosts=hosts, inventory=inventory, known_hosts=known_hosts)


def stop(paths: LabPaths, hosts: Sequence[Host]) -> None:
    """Remove ``hosts``: their processes, namespaces, veths and state (safe to repeat)."""
    for host in hosts:
        pid_file = paths.pids / f"{host.netns}.pid"
        text = pid_file.read_text(encoding="utf-8").strip() if pid_file.exists() else ""
        if text.isdigit():
            kill_pids([int(text)])
        pid_file.unlink(missing_ok=True)
    existing = {p.name for p in Path("/run/netns").glob("hrw-*")}
    delete_namespaces([h.netns for h in hosts if h.netns in existing])
    for host in hosts:
        if Path(f"/sys/class/net/{host.veth}").exists():
            run(["ip", "link", "del", host.veth], check=False)
        shutil.rmtree(paths.host_dir(host.name), ignore_errors=True)
