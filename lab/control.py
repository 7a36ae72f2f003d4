"""Bring the lab up, tear it down, report its state: the logic behind ``python -m lab``.

``up`` always starts from nothing (it tears down whatever a previous or half-finished run
left), so it is idempotent. ``down`` finds leftovers by what they are called, not by what
the last run remembered: ``hrw-`` namespaces, the ``hrwlab0`` bridge, ``hrwv*`` veths, pids
under ``.lab/pids`` and any process running a program or config from ``.lab/``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab import linux_host, windows_host
from lab.context import LabContext, new_proxy_password, new_secret
from lab.fleet import Host, count_from_env, expand_fleet, without_from_env
from lab.inventory_writer import write_inventory
from lab.netns import (
    Namespace,
    configure_inside,
    create_namespaces,
    delete_links,
    delete_namespaces,
    ensure_bridge,
    kill_pids,
    lab_namespaces,
    leftover_links,
)
from lab.paths import RELOCATED_STATE, LabPaths
from lab.pki import create_pki
from lab.profiles import load_profiles
from lab.services import SERVICES, start_service
from lab.sshkeys import write_keypair

REQUIRED_TOOLS = (
    "ip",
    "nft",
    "unshare",
    "nsenter",
    "setpriv",
    "taskset",
    "gcc",
    "mount",
    "hostname",
)
SSHD = "/usr/sbin/sshd"
IDLE_SOURCE = Path(__file__).resolve().parent / "idle.c"
Log = Callable[[str], None]


class LabError(RuntimeError):
    """The lab cannot be brought up or down; the message is one line saying what to fix."""


def preflight(tools: Sequence[str] = REQUIRED_TOOLS) -> None:
    """Raise LabError unless we are root and ``tools`` (default: all the lab runs) exist."""
    if os.geteuid() != 0:
        raise LabError(
            "the lab needs root (network namespaces, bind mounts); run it as root, "
            "e.g. sudo make lab-up"
        )
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if tools == REQUIRED_TOOLS and not os.access(SSHD, os.X_OK):
        missing.append(SSHD)
    if missing:
        raise LabError(
            f"missing tool(s): {', '.join(missing)}; run `make setup` "
            "(installs openssh-server nftables iproute2 util-linux gcc)"
        )


def compile_idle(paths: LabPaths) -> None:
    """Compile lab/idle.c into .lab/bin/hrw-idle (static when libc.a exists, else dynamic)."""
    paths.bin.mkdir(parents=True, exist_ok=True)
    base = ["gcc", "-Os", "-o", str(paths.idle), str(IDLE_SOURCE)]
    for extra in (["-static"], []):
        proc = subprocess.run(base + extra, capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            return
    reason = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "gcc failed"
    raise LabError(f"cannot compile {IDLE_SOURCE}: {reason}")


def _sshd_uid() -> int:
    import pwd

    try:
        return pwd.getpwnam("sshd").pw_uid
    except KeyError:
        return 102


def _pid_file(paths: LabPaths, name: str) -> Path:
    return paths.pids / f"{name}.pid"


def _record_pid(paths: LabPaths, name: str, pid: int) -> None:
    paths.pids.mkdir(parents=True, exist_ok=True)
    _pid_file(paths, name).write_text(f"{pid}\n", encoding="utf-8")


def _argv(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def is_lab_command(argv: Sequence[str], paths: LabPaths) -> bool:
    """Return whether ``argv`` is one of the programs the lab starts, with lab state args.

    Matching the program as well as the ``.lab/`` path keeps lab-down from killing an
    operator's ``tail -f .lab/logs/proxy.log`` or editor.
    """
    if not argv:
        return False
    marker = str(paths.state) + "/"
    if not any(marker in a for a in argv):
        return False
    program = os.path.basename(argv[0].split(" ", 1)[0])
    if argv[0] == str(paths.idle) or program in ("unshare", "ip"):
        return True
    if program.startswith("sshd") or argv[0].startswith("sshd:"):
        return True
    return program.startswith("python") and "-m" in argv and any(a.startswith("lab.") for a in argv)


def lab_processes(paths: LabPaths) -> list[int]:
    """Return pids of running lab processes: recorded in .lab/pids, or found by command line."""
    found = set()
    if paths.pids.is_dir():
        for pid_file in paths.pids.glob("*.pid"):
            text = pid_file.read_text(encoding="utf-8").strip()
            if text.isdigit() and is_lab_command(_argv(int(text)), paths):
                found.add(int(text))
    for entry in Path("/proc").iterdir():
        is_pid = entry.name.isdigit() and int(entry.name) != os.getpid()
        if is_pid and is_lab_command(_argv(int(entry.name)), paths):
            found.add(int(entry.name))
    return sorted(found)


def _wait_gone(pids: Sequence[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{p}").exists() for p in pids):
            return
        time.sleep(0.05)


def is_up(paths: LabPaths) -> bool:
    """Return whether anything of the lab exists (inventory, namespaces, links, processes)."""
    return bool(
        paths.inventory.exists() or lab_namespaces() or leftover_links() or lab_processes(paths)
    )


def down(paths: LabPaths, log: Log) -> None:
    """Remove every namespace, process, interface and file of the lab (safe to repeat)."""
    preflight(tools=("ip", "umount"))
    paths.inventory.unlink(missing_ok=True)
    pids = lab_processes(paths)
    kill_pids(pids)
    namespaces = lab_namespaces()
    delete_namespaces(namespaces)
    _wait_gone(pids, 5.0)
    delete_links()
    if paths.state.is_dir():
        for entry in paths.state.iterdir():
            if entry in paths.keep:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        if paths.state == RELOCATED_STATE and not any(paths.state.iterdir()):
            paths.state.rmdir()  # the relocated state folder is the lab's own; leave nothing
    left = lab_namespaces() + leftover_links()
    if left:
        raise LabError(f"could not remove {', '.join(left)}; check `ip netns pids` / `ip link`")
    log(f"lab: down (removed {len(namespaces)} namespaces, {len(pids)} processes)")


@dataclass
class StartResult:
    """What ``up`` started and which hosts failed (host name -> one-line reason)."""

    hosts: list[Host]
    failures: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def _port_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


def _log_tail(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return lines[-1][:200] if lines else "log is empty"


def wait_ready(
    targets: dict[str, tuple[int, list[tuple[str, int]], Path]], timeout: float
) -> dict[str, str]:
    """Wait until each target's ports accept TCP; return {name: reason} for those that never did.

    ``targets`` maps a name to (launcher pid, [(address, port)], log file). A target whose
    launcher exits stops being waited for at once.
    """
    pending = dict(targets)
    failures: dict[str, str] = {}
    deadline = time.monotonic() + timeout

    def check(item: tuple[str, tuple[int, list[tuple[str, int]], Path]]) -> tuple[str, bool]:
        name, (_pid, ports, _log) = item
        return name, all(_port_open(a, p) for a, p in ports)

    with ThreadPoolExecutor(max_workers=32) as pool:
        while pending and time.monotonic() < deadline:
            for name, ready in pool.map(check, list(pending.items())):
                if ready:
                    pending.pop(name)
            for name, (pid, _ports, log) in list(pending.items()):
                try:
                    done, status = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    done, status = pid, 0
                if done:
                    failures[name] = (
                        f"exited (status {os.waitstatus_to_exitcode(status)}): {_log_tail(log)}"
                    )
                    pending.pop(name)
            if pending:
                time.sleep(0.2)
    for name, (_pid, ports, log) in pending.items():
        port_list = ", ".join(str(p) for _a, p in ports)
        failures[name] = f"port {port_list} not open after {timeout:.0f}s: {_log_tail(log)}"
    return failures


def _write_state(paths: LabPaths, ctx: LabContext, result: StartResult) -> None:
    state: dict[str, Any] = {
        "hosts": [
            {
                "name": h.name,
                "profile": h.profile.name,
                "platform": h.platform,
                "address": h.address,
                "netns": h.netns,
                "workspace_id": h.workspace_id,
            }
            for h in result.hosts
        ],
        "failures": result.failures,
        "proxy_url": ctx.proxy_url,
        "proxy_password": ctx.proxy_password,
        "winrm_password": ctx.winrm_password,
        "imds_token": ctx.imds_token,
        "started_seconds": round(result.seconds, 2),
    }
    fd = os.open(paths.run_state, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=2)


def read_state(paths: LabPaths) -> dict[str, Any] | None:
    """Return the running lab's state (hosts, failures, secrets), or None when it is down."""
    try:
        data: dict[str, Any] = json.loads(paths.run_state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data


def _prepare_context(paths: LabPaths) -> LabContext:
    paths.state.mkdir(parents=True, exist_ok=True)
    compile_idle(paths)
    pki = create_pki(paths.pki)
    public = write_keypair(paths.ssh_key, "hrw-lab")
    return LabContext(
        paths=paths,
        pki=pki,
        proxy_password=new_proxy_password(),
        winrm_password=new_secret(),
        lab_public_key=public,
        sshd_uid=_sshd_uid(),
        imds_token="hrw-lab-imds-token-" + new_secret(),
    )


def prepare_hosts(hosts: list[Host], ctx: LabContext) -> list[str]:
    """Lay out every host's files (in parallel); return the Linux hosts' known_hosts lines."""

    def prepare(host: Host) -> str | None:
        if host.platform == "linux":
            return linux_host.prepare(host, ctx)
        windows_host.prepare(host, ctx)
        return None

    with ThreadPoolExecutor(max_workers=8) as pool:
        return [line for line in pool.map(prepare, hosts) if line]


def _start_fleet(hosts: list[Host], ctx: LabContext, log: Log) -> StartResult:
    paths = ctx.paths
    started = time.monotonic()
    result = StartResult(hosts=hosts)
    emulator_problem = windows_host.emulator_missing()

    known = prepare_hosts(hosts, ctx)
    paths.known_hosts.write_text("\n".join(known) + "\n", encoding="utf-8")

    namespaces = [s.namespace for s in SERVICES] + [
        Namespace(h.netns, h.veth, h.address, block_azure_443=h.profile["network"] == "blocked")
        for h in hosts
    ]
    ensure_bridge()
    create_namespaces(namespaces)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(configure_inside, namespaces))

    targets: dict[str, tuple[int, list[tuple[str, int]], Path]] = {}
    for service in SERVICES:
        pid = start_service(service, ctx)
        _record_pid(paths, service.namespace.name, pid)
        targets[service.namespace.name] = (
            pid,
            [(service.address, service.port)],
            paths.logs / f"{service.name}.log",
        )
    for host in hosts:
        hdir = paths.host_dir(host.name)
        if host.platform == "linux":
            pid = linux_host.start(host, ctx)
            targets[host.name] = (pid, [(host.address, 22)], hdir / "log" / "init.log")
        elif emulator_problem:
            result.failures[host.name] = f"not started: {emulator_problem}"
            continue
        else:
            pid = windows_host.start(host, ctx)
            ports = [
                (host.address, windows_host.HTTP_PORT),
                (host.address, windows_host.HTTPS_PORT),
            ]
            targets[host.name] = (pid, ports, hdir / "winrm.log")
        _record_pid(paths, host.netns, pid)
    log(f"lab: started {len(targets)} processes, waiting for their ports")
    result.failures.update(wait_ready(targets, timeout=30.0 + 0.3 * len(hosts)))
    result.seconds = time.monotonic() - started
    return result


def up(paths: LabPaths, log: Log) -> StartResult:
    """Start the fleet (LAB_HOSTS hosts, default one per profile, without the profiles
    LAB_WITHOUT names) and write the inventory.

    Returns the start result; hosts that failed are listed in it and in ``lab status``.
    The inventory lists every host of the fleet, failed ones included, so that a failed host
    shows up as a failed check rather than vanishing from the run.
    """
    preflight()
    hosts = expand_fleet(load_profiles(), count_from_env(), without_from_env())
    if is_up(paths):
        log("lab: already up or left over; tearing it down first")
        down(paths, log)
    try:
        ctx = _prepare_context(paths)
        result = _start_fleet(hosts, ctx, log)
        _write_state(paths, ctx, result)
        write_inventory(paths.inventory, hosts, paths, ctx.winrm_password, ctx.proxy_url)
    except BaseException:
        log("lab: start failed; removing what was made")
        down(paths, log)
        raise
    return result


def status(paths: LabPaths) -> tuple[bool, list[str]]:
    """Return (all hosts healthy, one line per host) for the running lab."""
    state = read_state(paths)
    if state is None or not paths.inventory.exists():
        leftovers = lab_namespaces() + leftover_links()
        extra = (
            f" (leftovers: {', '.join(leftovers[:5])}; run `make lab-down`)" if leftovers else ""
        )
        return False, [f"lab: down{extra}"]
    namespaces = set(lab_namespaces())
    lines = []
    healthy = True
    for host in state["hosts"]:
        port = 22 if host["platform"] == "linux" else windows_host.HTTPS_PORT
        if host["netns"] not in namespaces:
            verdict = "namespace missing"
        elif host["name"] in state["failures"]:
            verdict = f"failed: {state['failures'][host['name']]}"
        elif _port_open(host["address"], port):
            verdict = "up"
        else:
            verdict = f"port {port} closed"
        healthy = healthy and verdict == "up"
        lines.append(f"{host['name']:<40} {host['address']:<14} {host['profile']:<32} {verdict}")
    return healthy, lines
