"""Recorded Windows probe outputs (PowerShell 5.1 shapes), and how to load and remake them.

``tests/data/windows/<name>.stdout`` / ``.stderr`` hold what one probe run printed and
``manifest.json`` its exit code, a description and the controller's ``time.time()`` just
before and after the command (``controller_window``, which the clock section needs).
:func:`load_recorded` parses a recording into sections, for the verdict tests. The
recordings are made by the lab's engine from the profiles below, with real TLS peers on
127.0.0.1, at a fixed time: ``python -m tests.windows_recorded`` rewrites them.
"""

from __future__ import annotations

import json
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hrw_preflight.facts.model import Section
from hrw_preflight.facts.params import ProbeParams
from hrw_preflight.facts.windows.probe import (
    CommandTiming,
    build_invocation,
    encode_command,
    parse_output,
)

if TYPE_CHECKING:
    from lab.winrm_emulator.config import HostConfig
    from tests.windows_tls_servers import ServerChain

DATA = Path(__file__).parent / "data" / "windows"
ORIGIN = (
    "synthetic: written by the hrw-lab WinRM emulator's engine (lab/winrm_emulator), "
    "not by a real Windows PowerShell; remade with python -m tests.windows_recorded"
)
RECORDED_AT = datetime(2026, 11, 27, 9, 0, 0, tzinfo=UTC)
# The controller's clock around each recorded command: sent 1.2 s before the host's clock
# read RECORDED_AT (plus the profile's offset), answered 0.8 s after. So the controller's
# midpoint is RECORDED_AT - 0.2 s and the uncertainty 1 s + 1 s slack.
CONTROLLER_WINDOW = (RECORDED_AT.timestamp() - 1.2, RECORDED_AT.timestamp() + 0.8)
JRDS = "eus-jobruntimedata-prod-su1.azure-automation.net"
# The boundary every recording was made with (a run draws a fresh one; see facts/framing.py).
RECORDED_BOUNDARY = "HRW" + "7e" * 16
PROXY_USER = "labproxy"
PROXY_SECRET = "recorded-proxy-secret"  # a throwaway value, only ever used on loopback
# The names the lab's Azure endpoint certificate covers (lab/pki.py AZURE_SANS).
AZURE_SANS = [
    "*.agentsvc.azure-automation.net",
    "*.azure-automation.net",
    "*.oms.opinsights.azure.com",
    "*.ods.opinsights.azure.com",
]
# Recorded chains stay valid long after RECORDED_AT, so verdicts on them do not expire.
CHAIN_VALID_YEARS = 20

HEALTHY: dict[str, Any] = {
    "cpus": 2,
    "memory_mb": 8192,
    "memory_available_mb": 6144,
    "cpu_load_percent": 10,
    "update_management": True,
    "user_worker": True,
    "network": "direct",
    "healthservice": {"exists": True, "status": "Running", "start_type": "Automatic"},
    "events": [
        {
            "log": "Microsoft-SMA/Operational",
            "id": 15003,
            "provider": "Microsoft-SMA",
            "level": 4,
            "minutes_ago": 45,
            "message": "Hybrid Runbook Worker started and is polling for jobs.",
        }
    ],
}


V2_EXTENSION = {"status": "success", "service": "Running", "start_mode": "Auto"}
# An extension-only host: no MMA, no agent-based worker registered.
V2: dict[str, Any] = {
    "healthservice": {"exists": False},
    "update_management": False,
    "user_worker": False,
    "win_extension": V2_EXTENSION,
}


@dataclass(frozen=True)
class Recording:
    """One recording: profile changes from healthy, how the network behaves, a description.

    ``network`` is one of ``direct``, ``intercepted`` (agent proxy, the probe is given its
    credentials), ``intercepted-agent-only`` (the probe knows no proxy password),
    ``blocked`` (every connect times out) or ``mixed`` (refused, timeout, unresolvable).
    ``transform`` names a change applied to the engine's output afterwards.
    """

    description: str
    profile: dict[str, Any] = field(default_factory=dict)
    network: str = "direct"
    transform: str = ""
    account: str | None = None  # hrw_worker_credential_account given to the probe


RECORDINGS: dict[str, Recording] = {
    "windows-healthy": Recording(
        "healthy worker, two sockets, informational SMA event only", {"sockets": 2}
    ),
    "windows-healthservice-stopped": Recording(
        "HealthService exists but is stopped",
        {"healthservice": {"exists": True, "status": "Stopped", "start_type": "Automatic"}},
    ),
    "windows-service-missing": Recording(
        "HealthService (and so the MMA) is not installed", {"healthservice": {"exists": False}}
    ),
    "windows-event-4502": Recording(
        "one event 4502 from the HybridAgent module (a single object, not an array)",
        {
            "events": [
                {
                    "log": "Operations Manager",
                    "id": 4502,
                    "provider": "Health Service Modules",
                    "level": 2,
                    "minutes_ago": 20,
                    "message": 'A module of type "Microsoft.EnterpriseManagement.HealthService.'
                    'AzureAutomation.HybridAgent" reported an exception: the certificate '
                    "was not issued by a certificate authority used for Microsoft services.",
                }
            ]
        },
    ),
    "windows-event-unformattable": Recording(
        "an event 4502 whose message the host cannot format (provider message file lacks it)",
        {
            "events": [
                *HEALTHY["events"],
                {
                    "log": "Operations Manager",
                    "id": 4502,
                    "provider": "Health Service Modules",
                    "level": 2,
                    "minutes_ago": 25,
                    "message": "(not formattable on this host)",
                    "format_error": "The specified resource type cannot be found in the image file",
                },
                {
                    "log": "Operations Manager",
                    "id": 2138,
                    "provider": "HealthService",
                    "level": 3,
                    "minutes_ago": 26,
                    "message": "The proxy server asked for credentials.",
                },
            ]
        },
    ),
    "windows-sma-4294967295": Recording(
        "Microsoft-SMA holds a sandbox exit with code 4294967295",
        {
            "events": [
                {
                    "log": "Microsoft-SMA/Operational",
                    "id": 15102,
                    "provider": "Microsoft-SMA",
                    "level": 2,
                    "minutes_ago": 30,
                    "message": "Sandbox ended: Win32 Process Exited with code [4294967295].",
                },
                {
                    "log": "Microsoft-SMA/Operational",
                    "id": 15011,
                    "provider": "Microsoft-SMA",
                    "level": 2,
                    "minutes_ago": 35,
                    "message": "Transport timed out trying to connect to the JRDS endpoint.",
                },
                {
                    "log": "Microsoft-SMA/Operational",
                    "id": 15011,
                    "provider": "Microsoft-SMA",
                    "level": 2,
                    "minutes_ago": 60 * 30,
                    "message": "Transport timed out (outside the look-back window).",
                },
            ]
        },
    ),
    "windows-connectivity-errors": Recording(
        "agentsvc refused, oms times out, the JRDS name does not resolve", network="mixed"
    ),
    "windows-443-blocked": Recording("every endpoint connect times out", network="blocked"),
    "windows-tls-intercepted": Recording(
        "agent proxy re-signs TLS; the probe was given the proxy credentials",
        network="intercepted",
    ),
    "windows-proxy-no-password": Recording(
        "agent proxy demands credentials the probe cannot read (407)",
        network="intercepted-agent-only",
    ),
    "windows-proxy-unreadable": Recording(
        "the agent's COM object has no proxyUrl property (PropertyNotFoundStrict)",
        {"agent_com_lacks": ["proxyUrl"]},
    ),
    "windows-underspec": Recording(
        "one logical processor, 2 GB", {"cpus": 1, "memory_mb": 2048, "memory_available_mb": 1536}
    ),
    "windows-resource-pressure": Recording(
        "97% CPU on both sockets, 256 MB free",
        {"sockets": 2, "cpu_load_percent": 97, "memory_available_mb": 256},
    ),
    "windows-missing-log": Recording(
        "the Microsoft-SMA/Operational log does not exist",
        {"event_logs_missing": ["Microsoft-SMA/Operational"]},
    ),
    "windows-access-denied": Recording(
        "reading the Operations Manager log is denied",
        {"event_logs_denied": ["Operations Manager"]},
    ),
    "windows-garbled-json": Recording(
        "the hardware section's JSON is cut in half", {"garbled_sections": ["hardware"]}
    ),
    "windows-cut-off": Recording(
        "output ends inside the network section (connection dropped)", transform="cut"
    ),
    "windows-progress-stderr": Recording(
        "healthy output with 5.1's 'Preparing modules for first use.' progress on stderr",
        transform="progress",
    ),
    "windows-dotnet-452": Recording(
        ".NET Framework 4.5.2 (Release 379893), older than the worker needs",
        {"dotnet_release": 379893},
    ),
    "windows-tls12-client-disabled": Recording(
        "SCHANNEL TLS 1.2 Client: Enabled=0, DisabledByDefault=1",
        {"tls12_client_enabled": 0, "tls12_client_disabled_by_default": 1},
    ),
    "windows-no-strong-crypto": Recording(
        ".NET 4 strong crypto set only in the 64-bit registry view (WOW6432Node key has no values)",
        {
            "dotnet_strong_crypto": {
                "SOFTWARE\\Microsoft\\.NETFramework\\v4.0.30319": {"SchUseStrongCrypto": 1},
                "SOFTWARE\\WOW6432Node\\Microsoft\\.NETFramework\\v4.0.30319": {},
            }
        },
    ),
    "windows-powershell-4": Recording(
        "Windows PowerShell 4.0 (no WMF 5.1)", {"powershell_version": "4.0"}
    ),
    "windows-clock-ahead": Recording(
        "the host's clock runs 20 minutes ahead of UTC", {"clock_offset_s": 1200}
    ),
    # Extension-based workers (no MMA): what the extension's blocks print.
    "windows-v2-install-stuck": Recording(
        "extension-based worker on an Azure VM whose extension status stayed transitioning",
        {**V2, "win_extension": {**V2_EXTENSION, "status": "transitioning"}, "place": "azure-vm"},
    ),
    "windows-v2-no-identity": Recording(
        "extension-based worker on an Azure VM without a system identity (IMDS 400)",
        {**V2, "place": "azure-vm", "imds_identity": "none"},
    ),
    "windows-v2-arc-tokens-acl": Recording(
        "extension-based worker on Arc whose custom credential reads Tokens only via a group, "
        "one SMA exit 2148734720",
        {
            **V2,
            "place": "arc",
            "worker_credential": {"account": "HRWLAB\\hrwrunner", "tokens": "group"},
            "events": [
                {
                    "log": "Microsoft-SMA/Operational",
                    "id": 15102,
                    "provider": "Microsoft-SMA",
                    "level": 2,
                    "minutes_ago": 25,
                    "message": "Sandbox ended: Win32 Process Exited with code [2148734720].",
                }
            ],
        },
        account="HRWLAB\\hrwrunner",
    ),
    "windows-unknown-command": Recording(
        "a probe block the host cannot run: CommandNotFoundException as CLIXML",
        transform="unknown",
    ),
}

_PROGRESS = (
    "#< CLIXML\r\n"
    '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
    '<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject'
    '</T><T>System.Object</T></TN><MS><I64 N="SourceId">1</I64><PR N="Record">'
    "<AV>Preparing modules for first use.</AV><AI>0</AI><Nil /><PI>-1</PI><PC>-1</PC>"
    "<T>Completed</T><SR>-1</SR><SD> </SD></PR></MS></Obj></Objs>"
)


def recorded_names() -> list[str]:
    """Return the names of all recordings."""
    return sorted(RECORDINGS)


def recorded_output(name: str) -> tuple[bytes, bytes, int]:
    """Return the recorded stdout, stderr and exit code of ``name``."""
    if name not in RECORDINGS:
        raise KeyError(f"no Windows recording named {name!r}; known: {', '.join(RECORDINGS)}")
    manifest = json.loads((DATA / "manifest.json").read_text(encoding="utf-8"))
    stderr_file = DATA / f"{name}.stderr"
    stderr = stderr_file.read_bytes() if stderr_file.exists() else b""
    return (DATA / f"{name}.stdout").read_bytes(), stderr, int(manifest[name]["rc"])


def recorded_timing(name: str) -> CommandTiming:
    """Return the controller's clock just before and after the recorded command ``name``."""
    if name not in RECORDINGS:
        raise KeyError(f"no Windows recording named {name!r}; known: {', '.join(RECORDINGS)}")
    manifest = json.loads((DATA / "manifest.json").read_text(encoding="utf-8"))
    started, ended = manifest[name]["controller_window"]
    return CommandTiming(started=float(started), ended=float(ended))


def load_recorded(name: str) -> dict[str, Section]:
    """Return the sections the Windows parser makes of the recording ``name``.

    The recorded controller window goes with it, so the clock section holds data.
    """
    return parse_output(*recorded_output(name), recorded_timing(name), boundary=RECORDED_BOUNDARY)


# --- making the recordings (needs the lab package; loopback only) ----------------------


def loopback_engine_host(
    name: str,
    workspace: str,
    endpoints: dict[str, str],
    resolve: dict[str, str],
    proxy: str | None,
    profile: dict[str, Any],
) -> HostConfig:
    """Return an emulated Windows host for the engine alone (no WinRM server, so no ports,
    certificate or password in use): a healthy profile with ``profile`` on top."""
    from lab.winrm_emulator.config import HostConfig

    return HostConfig(
        name=name,
        address="127.0.0.1",
        http_port=0,
        https_port=0,
        tls_cert="",
        tls_key="",
        username="hrwadmin",
        password="unused",
        workspace_id=workspace,
        endpoints=endpoints,
        resolve=resolve,
        proxy=proxy,
        profile={**HEALTHY, **profile},
    )


def workspace_of(host_name: str) -> str:
    """Return the lab workspace id of a host (docs/design.md section 2)."""
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{host_name}.hrw-lab"))


def endpoint_names(workspace: str) -> dict[str, str]:
    """Return the lab endpoint host names of a workspace, by role."""
    return {
        "agentsvc": f"{workspace}.agentsvc.azure-automation.net",
        "jrds": JRDS,
        "oms": f"{workspace}.oms.opinsights.azure.com",
        "ods": f"{workspace}.ods.opinsights.azure.com",
    }


def recording_chain(directory: Path, root_cn: str, issuing_cn: str) -> ServerChain:
    """Return a root, issuing CA and leaf for :data:`AZURE_SANS`, made once per directory.

    Every recording of one run shares the chain in ``directory`` (so a verdict test that
    trusts one recording's CA trusts them all), and it is valid from a day before
    :data:`RECORDED_AT` for :data:`CHAIN_VALID_YEARS` years, so the recordings do not expire.
    """
    from tests.windows_tls_servers import ServerChain, make_chain

    files = ServerChain(directory / "chain.pem", directory / "key.pem", directory / "root.pem")
    if files.chain.exists():
        return files
    valid = (RECORDED_AT - timedelta(days=1), RECORDED_AT + timedelta(days=365 * CHAIN_VALID_YEARS))
    return make_chain(directory, root_cn, issuing_cn, list(AZURE_SANS), valid)


@contextmanager
def network_for(kind: str, workdir: Path) -> Iterator[tuple[dict[str, str], int, str | None]]:
    """Start the loopback peers for a network kind; yield resolve map, port and proxy URL.

    The resolve map is filled by the caller's endpoint names: every name maps to the same
    address except in ``mixed``, which returns a per-role address map keyed by role.
    """
    from tests.windows_tls_servers import (
        black_hole,
        closed_port,
        connect_proxy,
        tls_server,
    )

    with ExitStack() as stack:
        if kind == "direct":
            chain = recording_chain(
                workdir / "azure", "Lab Azure Root CA", "Lab Azure TLS Issuing CA"
            )
            port = stack.enter_context(tls_server(chain))
            yield {"*": "127.0.0.1"}, port, None
        elif kind.startswith("intercepted"):
            chain = recording_chain(
                workdir / "proxy", "Lab Proxy Root CA", "Microsoft Azure RSA TLS Issuing CA 03"
            )
            upstream = stack.enter_context(tls_server(chain))
            proxy_port = stack.enter_context(connect_proxy(upstream, PROXY_USER, PROXY_SECRET))
            url = f"http://{PROXY_USER}:{PROXY_SECRET}@127.0.0.1:{proxy_port}"
            yield {}, 443, url
        elif kind == "blocked":
            port = stack.enter_context(black_hole("127.0.0.3"))
            yield {"*": "127.0.0.3"}, port, None
        elif kind == "mixed":
            port = closed_port()
            stack.enter_context(black_hole("127.0.0.3", port))
            yield {"agentsvc": "127.0.0.2", "oms": "127.0.0.3"}, port, None
        else:
            raise ValueError(f"unknown network kind {kind!r}")


def _transform(kind: str, stdout: bytes, stderr: bytes, rc: int) -> tuple[bytes, bytes, int]:
    if kind == "cut":
        text = stdout.decode("utf-8")
        begin = f"{RECORDED_BOUNDARY} BEGIN network"
        cut = text.index(begin) + len(f"{begin}\r\n[\r\n    {{")
        return text[:cut].encode("utf-8"), stderr, rc
    if kind == "progress":
        return stdout, _PROGRESS.encode("utf-8"), rc
    return stdout, stderr, rc


def record_one(name: str, workdir: Path) -> tuple[bytes, bytes, int]:
    """Run the engine for recording ``name`` against fresh loopback peers; return its output."""
    from lab.winrm_emulator.engine import run_command, run_probe

    recording = RECORDINGS[name]
    workspace = workspace_of(name)
    names = endpoint_names(workspace)
    with network_for(recording.network, workdir) as (addresses, port, proxy):
        if "*" in addresses:
            resolve = {host: addresses["*"] for host in names.values()}
        else:
            resolve = {names[role]: address for role, address in addresses.items()}
        host = loopback_engine_host(
            name, workspace, names, resolve, proxy, {**recording.profile, "endpoint_port": port}
        )
        timeout = 0.3 if recording.network in ("blocked", "mixed") else 3.0
        given_proxy = proxy if recording.network == "intercepted" else None
        params = replace(
            ProbeParams(connect_timeout_s=timeout),
            proxy=given_proxy,
            worker_credential_account=recording.account,
        )
        command, stdin = build_invocation(params, RECORDED_BOUNDARY)
        if recording.transform == "unknown":
            text = stdin.decode("ascii").replace(
                "Get-CimInstance -ClassName Win32_ComputerSystem",
                "Get-ComputerInfo -Property CsTotalPhysicalMemory",
            )
            output = run_command(command, [], text.encode("ascii"), host)
        else:
            assert command.endswith(encode_command(_bootstrap()))
            output = run_probe(stdin, host, RECORDED_AT)
    return _transform(recording.transform, output.stdout, output.stderr, output.exit_code)


def _bootstrap() -> str:
    from hrw_preflight.facts.windows.probe import BOOTSTRAP

    return BOOTSTRAP


def record_all() -> None:
    """Rewrite every recording and the manifest under tests/data/windows/."""
    DATA.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in recorded_names():
            stdout, stderr, rc = record_one(name, Path(tmp))
            (DATA / f"{name}.stdout").write_bytes(stdout)
            stderr_file = DATA / f"{name}.stderr"
            if stderr:
                stderr_file.write_bytes(stderr)
            elif stderr_file.exists():
                stderr_file.unlink()
            manifest[name] = {
                "origin": ORIGIN,
                "rc": rc,
                "description": RECORDINGS[name].description,
                "controller_window": list(CONTROLLER_WINDOW),
            }
            print(f"{name}: rc={rc}, {len(stdout)} bytes", file=sys.stderr)
    (DATA / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    record_all()
