"""The lab network: bridge ``hrwlab0``, one network namespace per host, nftables drops.

Nothing here adds a default route, NAT or forwarding: every namespace knows only
10.213.0.0/16, so no packet can leave the lab. Root-side work for all namespaces goes to one
``ip -batch`` call and each namespace's inside setup to one more, which keeps a 200-host
start to a few hundred short ``ip`` calls.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lab.fleet import AZURE_ADDRESS, BRIDGE, BRIDGE_ADDRESS, NETNS_PREFIX, PREFIX_LEN

NETNS_DIR = Path("/run/netns")
BLOCK_TABLE = "hrwlab"


class LabCommandError(RuntimeError):
    """A system command the lab relies on failed; the message says which and why."""


@dataclass(frozen=True)
class Namespace:
    """A namespace to create: its name, root-side veth and address on the bridge."""

    name: str
    veth: str
    address: str
    block_azure_443: bool = False


def run(argv: Sequence[str], stdin: str | None = None, check: bool = True) -> str:
    """Run a command and return its stdout; on failure raise LabCommandError with stderr."""
    proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        reason = detail[-1] if detail else f"exit status {proc.returncode}"
        raise LabCommandError(f"{' '.join(argv[:4])} failed: {reason}")
    return proc.stdout


def lab_namespaces() -> list[str]:
    """Return the names of existing network namespaces that belong to the lab (``hrw-``)."""
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(NETNS_PREFIX))


def ensure_bridge() -> None:
    """Create bridge ``hrwlab0`` with 10.213.0.1/16 in the root namespace (no forwarding)."""
    if not Path(f"/sys/class/net/{BRIDGE}").exists():
        run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    run(["ip", "addr", "replace", f"{BRIDGE_ADDRESS}/{PREFIX_LEN}", "dev", BRIDGE])
    run(["ip", "link", "set", BRIDGE, "up"])


def create_namespaces(namespaces: Sequence[Namespace]) -> None:
    """Create the namespaces and plug each into the bridge by a veth pair, in one batch."""
    lines = [f"netns add {ns.name}" for ns in namespaces]
    for ns in namespaces:
        lines.append(f"link add {ns.veth} type veth peer name eth0 netns {ns.name}")
        lines.append(f"link set {ns.veth} master {BRIDGE} up")
    run(["ip", "-batch", "-"], stdin="\n".join(lines) + "\n")


def configure_inside(ns: Namespace) -> None:
    """Give the namespace its address and loopback, plus the 443 drop rule when blocked."""
    batch = f"addr add {ns.address}/{PREFIX_LEN} dev eth0\nlink set eth0 up\nlink set lo up\n"
    run(["ip", "-n", ns.name, "-batch", "-"], stdin=batch)
    if ns.block_azure_443:
        run(["ip", "netns", "exec", ns.name, "nft", "-f", "-"], stdin=block_ruleset())


def block_ruleset() -> str:
    """Return the nftables ruleset that drops TCP to the Azure endpoint's port 443.

    Dropping (not rejecting) makes connects time out, as behind a silent firewall.
    """
    return (
        f"table inet {BLOCK_TABLE} {{\n"
        "  chain output {\n"
        "    type filter hook output priority 0; policy accept;\n"
        f"    ip daddr {AZURE_ADDRESS} tcp dport 443 drop\n"
        "  }\n"
        "}\n"
    )


def namespace_pids(name: str) -> list[int]:
    """Return the pids of every process whose network namespace is ``name``."""
    out = run(["ip", "netns", "pids", name], check=False)
    return [int(tok) for tok in out.split() if tok.isdigit()]


def kill_pids(pids: Iterable[int]) -> None:
    """Send SIGKILL to each pid, ignoring ones that are already gone."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue


def delete_namespaces(names: Sequence[str]) -> None:
    """Kill every process in the given namespaces, then delete the namespaces."""
    for name in names:
        kill_pids(namespace_pids(name))
    if names:
        run(
            ["ip", "-force", "-batch", "-"],
            stdin="".join(f"netns del {n}\n" for n in names),
            check=False,
        )
    for name in names:
        # A crash between creating the file and mounting it leaves a plain file behind.
        leftover = NETNS_DIR / name
        if leftover.exists():
            subprocess.run(["umount", "-l", str(leftover)], capture_output=True, check=False)
            leftover.unlink(missing_ok=True)


def leftover_links() -> list[str]:
    """Return root-namespace interfaces the lab made (bridge and ``hrwv*`` veths)."""
    names = [p.name for p in Path("/sys/class/net").iterdir()]
    return sorted(n for n in names if n == BRIDGE or n.startswith("hrwv"))


def delete_links() -> None:
    """Delete the lab's veths and the bridge from the root namespace."""
    links = leftover_links()
    veths = [n for n in links if n != BRIDGE]
    ordered = [*veths, BRIDGE] if BRIDGE in links else veths
    if ordered:
        run(
            ["ip", "-force", "-batch", "-"],
            stdin="".join(f"link del {n}\n" for n in ordered),
            check=False,
        )
