"""Answers to each known block of the probe script, from the emulated host's profile.

Each function writes what the corresponding ``#region hrw:<name>`` block prints on a real
Windows PowerShell 5.1 host in the profile's state: the same marker lines, the same
objects with the same property order, through :func:`convert_to_json`, and the same error
records (5.1's error ids and messages) where a cmdlet fails.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from lab.winrm_emulator import com_objects
from lab.winrm_emulator.config import HostConfig
from lab.winrm_emulator.ps_json import PsDate, convert_to_json
from lab.winrm_emulator.tls_probe import Endpoint, ProxyTarget, probe_all

SMA_LOG = "Microsoft-SMA/Operational"
SMA_EXIT_TEXT = "Win32 Process Exited with code [4294967295]"
# A profile names service states as ServiceControllerStatus does; Win32_Service spells them so.
WIN32_STATE = {
    "Stopped": "Stopped",
    "StartPending": "Start Pending",
    "StopPending": "Stop Pending",
    "Running": "Running",
    "Paused": "Paused",
}
WIN32_START_MODE = {
    "Boot": "Boot",
    "System": "System",
    "Automatic": "Auto",
    "Manual": "Manual",
    "Disabled": "Disabled",
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LEVEL = {"Critical": 1, "Error": 2, "Warning": 3, "Information": 4, "Verbose": 5}
DEFAULT_AGENT_VERSION = "7.3.1418.0"
DEFAULT_POWERSHELL_VERSION = "5.1.17763.2452"
DEFAULT_DOTNET_RELEASE = 528040  # .NET Framework 4.8 on Windows Server 2019
NETFX_64 = "SOFTWARE\\Microsoft\\.NETFramework\\v4.0.30319"
NETFX_32 = "SOFTWARE\\WOW6432Node\\Microsoft\\.NETFramework\\v4.0.30319"
# A hardened worker as the agent's TLS guidance asks: strong crypto on in both views.
# A profile's dotnet_strong_crypto maps a key to its values, or to None when the key is absent.
DEFAULT_STRONG_CRYPTO: dict[str, dict[str, int] | None] = {
    NETFX_64: {"SchUseStrongCrypto": 1, "SystemDefaultTlsVersions": 1},
    NETFX_32: {"SchUseStrongCrypto": 1, "SystemDefaultTlsVersions": 1},
}


Answer = Callable[["RunState"], list[str]]
ANSWERS: dict[str, Answer] = {}
ANSWER_VERSIONS: dict[str, int] = {}
"""The version of each block's answer. Raise it beside the answer whenever the answer
changes to follow a changed probe block; probe_blocks.BLOCKS must name the same version."""

# The preamble only defines helpers; what Test-HrwEndpoint does is re-done for real by
# tls_probe.probe_endpoint and what ConvertFrom-HrwProxyParams does by _proxy_from_params,
# so this is the version of those emulations (4: ConvertFrom-HrwProxyParams added).
ANSWER_VERSIONS["preamble"] = 4


def answers(block: str, version: int) -> Callable[[Answer], Answer]:
    """Register the decorated function as the answer to ``block`` at ``version``."""

    def register(function: Answer) -> Answer:
        ANSWERS[block] = function
        ANSWER_VERSIONS[block] = version
        return function

    return register


@dataclass(frozen=True)
class PsError:
    """An error record as Write-HrwError prints it."""

    error_id: str
    category: str
    message: str


@dataclass
class RunState:
    """What one emulated script run knows: the host, its parameters and shared variables.

    ``targets``, ``proxy`` and ``agent`` mirror the script's $HrwTargets, $HrwProxy and
    $HrwAgent, set by the worker block and read by the network block. ``code`` holds the
    text of each block being answered, for answers that check what the code asks for
    (COM member names).
    """

    host: HostConfig
    params: dict[str, Any]
    now: datetime
    agent: dict[str, Any] | None = None
    workers: list[dict[str, Any]] = field(default_factory=list)
    targets: list[Endpoint] = field(default_factory=list)
    proxy: ProxyTarget | None = None
    proxy_shown: dict[str, Any] | None = None
    code: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. $HrwArc (ps_ext_sections)
    proxy_secret: str = field(default="", repr=False)  # what the bootstrap read from stdin

    @property
    def profile(self) -> dict[str, Any]:
        """Return the host's lab profile."""
        return self.host.profile

    def mark(self, kind: str, name: str = "") -> str:
        """Return a marker line as the script prints it: ``"$HrwB <KIND> <name>"``, where
        $HrwB is the boundary the controller put in the parameters."""
        boundary = str(self.params.get("boundary") or "")
        return f"{boundary} {kind} {name}" if name else f"{boundary} {kind}"


def _error(state: RunState, error: PsError) -> list[str]:
    record = {"ErrorId": error.error_id, "Category": error.category, "Message": error.message}
    return [state.mark("ERROR"), convert_to_json(record)]


def _json(value: Any) -> list[str]:
    """Return the lines a pipeline's ConvertTo-Json prints: nothing for no objects."""
    if isinstance(value, list):
        if not value:
            return []
        if len(value) == 1:
            value = value[0]
    return [convert_to_json(value)]


def _garble(name: str, state: RunState, lines: list[str]) -> list[str]:
    """Cut the first JSON document short when the profile asks for a garbled section."""
    if name not in state.profile.get("garbled_sections", []):
        return lines
    for index, line in enumerate(lines):
        if line.startswith(("{", "[")):
            lines[index] = line[: max(1, len(line) // 2)]
            break
    return lines


def _block(name: str, state: RunState, body: list[str]) -> list[str]:
    return [state.mark("BEGIN", name), *_garble(name, state, body), state.mark("END", name)]


@answers("service", version=3)
def service(state: RunState) -> list[str]:
    """Answer the service block: Win32_Service filtered to HealthService.

    CIM hands State and StartMode over as strings (not enums as Get-Service does), and a
    filter that matches nothing yields no object and no error. Win32_Service reads the same
    on every .NET, so a profile's old ``dotnet_release`` changes nothing here.
    """
    svc = state.profile.get("healthservice") or {}
    if not svc.get("exists", True):
        body: list[str] = []
    else:
        status = WIN32_STATE[str(svc.get("status", "Running"))]
        start = WIN32_START_MODE[str(svc.get("start_type", "Automatic"))]
        body = _json({"Name": "HealthService", "State": status, "StartMode": start})
    return _block("service", state, body)


def _sockets(state: RunState) -> list[int]:
    """Return logical processors per socket (one Win32_Processor object each)."""
    cpus = int(state.profile.get("cpus", 2))
    sockets = max(1, min(int(state.profile.get("sockets", 1)), cpus))
    share, extra = divmod(cpus, sockets)
    return [share + (1 if i < extra else 0) for i in range(sockets)]


@answers("hardware", version=2)
def hardware(state: RunState) -> list[str]:
    """Answer the hardware block: processors per socket and physical memory in bytes."""
    processors = [
        {"DeviceID": f"CPU{i}", "NumberOfLogicalProcessors": n}
        for i, n in enumerate(_sockets(state))
    ]
    memory = int(state.profile.get("memory_mb", 8192)) * 1024 * 1024
    body = [
        state.mark("PART", "processor"),
        *_json(processors),
        state.mark("PART", "computersystem"),
        *_json({"TotalPhysicalMemory": memory}),
    ]
    return _block("hardware", state, body)


# Where the raw _Total counters start in an answer: arbitrary, large, as on a host up for days.
_IDLE_START = 987_654_321_000
_STAMP_START = 133_000_000_000_000_000
_SAMPLE_TICKS = 5_000_000  # 500 ms in 100 ns units, the script's sleep between reads


@answers("pressure", version=3)
def pressure(state: RunState) -> list[str]:
    """Answer the pressure block: three raw _Total processor samples and memory in KB.

    ``PercentProcessorTime`` is an inverse timer (idle time, 100 ns units), so at the
    profile's ``cpu_load_percent`` it grows by the idle share of each 500 ms interval.
    """
    load = float(state.profile.get("cpu_load_percent", 10)) / 100
    idle_step = round(_SAMPLE_TICKS * (1 - load))
    samples = [
        {
            "Name": "_Total",
            "PercentProcessorTime": _IDLE_START + i * idle_step,
            "Timestamp_Sys100NS": _STAMP_START + i * _SAMPLE_TICKS,
        }
        for i in range(3)
    ]
    total_kb = int(state.profile.get("memory_mb", 8192)) * 1024
    free_kb = int(state.profile.get("memory_available_mb", 6144)) * 1024
    body = [
        state.mark("PART", "processor"),
        *_json(samples),
        state.mark("PART", "os"),
        *_json({"FreePhysicalMemory": free_kb, "TotalVisibleMemorySize": total_kb}),
    ]
    return _block("pressure", state, body)


def _registry_dword(value: Any) -> int | None:
    """Return a profile's DWORD as PowerShell hands it over: signed Int32, None if absent."""
    if value is None:
        return None
    number = int(value) & 0xFFFFFFFF
    return number - (1 << 32) if number & 0x80000000 else number


@answers("prereqs", version=3)
def prereqs(state: RunState) -> list[str]:
    """Answer the prereqs block: PSVersion, .NET 4 Release, TLS 1.2 client, strong crypto.

    A registry key the profile leaves out does not exist, so its part prints nothing
    (Test-Path is false); the TLS 1.2 Client key exists when either of its values is set.
    """
    version = str(state.profile.get("powershell_version", DEFAULT_POWERSHELL_VERSION))
    body = [state.mark("PART", "powershell"), *_json({"Version": version})]
    body.append(state.mark("PART", "dotnet"))
    release = state.profile.get("dotnet_release", DEFAULT_DOTNET_RELEASE)
    if release is not None:
        body += _json({"Release": _registry_dword(release)})
    body.append(state.mark("PART", "tls12client"))
    enabled = _registry_dword(state.profile.get("tls12_client_enabled"))
    disabled = _registry_dword(state.profile.get("tls12_client_disabled_by_default"))
    if enabled is not None or disabled is not None:
        body += _json({"Enabled": enabled, "DisabledByDefault": disabled})
    body.append(state.mark("PART", "strongcrypto"))
    views = state.profile.get("dotnet_strong_crypto", DEFAULT_STRONG_CRYPTO)
    crypto = []
    for key in (NETFX_64, NETFX_32):
        values = views.get(key)  # None: the key does not exist
        crypto.append(
            {
                "Key": key,
                "Exists": values is not None,
                "SchUseStrongCrypto": _registry_dword((values or {}).get("SchUseStrongCrypto")),
                "SystemDefaultTlsVersions": _registry_dword(
                    (values or {}).get("SystemDefaultTlsVersions")
                ),
            }
        )
    body += _json(crypto)
    return _block("prereqs", state, body)


@answers("clock", version=2)
def clock(state: RunState) -> list[str]:
    """Answer the clock block: the host's UTC time in Unix milliseconds.

    The host's clock is the run's time (real UTC, or the fixed time of a recording) plus
    the profile's ``clock_offset_s``.
    """
    offset = float(state.profile.get("clock_offset_s", 0) or 0)
    moment = state.now + timedelta(seconds=offset)
    millis = round((moment - _EPOCH) / timedelta(milliseconds=1))
    return _block("clock", state, _json({"UtcUnixMilliseconds": millis}))


def _agent_installed(state: RunState) -> bool:
    svc = state.profile.get("healthservice") or {}
    return bool(svc.get("exists", True))


def _registered_workers(state: RunState) -> list[dict[str, Any]]:
    host = state.host
    account = uuid.uuid5(uuid.NAMESPACE_DNS, f"{host.name}.account.hrw-lab")
    agent_guid = uuid.uuid5(uuid.NAMESPACE_DNS, f"{host.name}.agent.hrw-lab")
    groups = []
    if state.profile.get("update_management", True):
        groups.append(f"{host.name.upper()}_{agent_guid}")
    if state.profile.get("user_worker", True):
        groups.append(str(state.profile.get("worker_group", "hrw-lab-workers")))
    root = "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\HybridRunbookWorker"
    return [
        {
            "Key": f"{root}\\{account}\\{group}",
            "Group": group,
            "JobRuntimeDataServiceUri": f"https://{host.endpoints['jrds']}",
        }
        for group in groups
    ]


def _proxy_from_params(given: Any, secret: str) -> tuple[ProxyTarget, dict[str, Any]] | None:
    """Do what ConvertFrom-HrwProxyParams does: the controller's split proxy, with the
    password the bootstrap read from standard input."""
    if not isinstance(given, dict) or not given.get("host"):
        return None
    name = str(given.get("user") or "")
    host, port = str(given["host"]), int(given["port"])
    masked = "http://" + (f"{quote(name, safe='')}:***@" if name else "") + f"{host}:{port}"
    target = ProxyTarget(host=host, port=port, user=name, secret=secret if name else "")
    return target, {"Url": masked, "Host": host, "Port": port, "HasCredentials": bool(name)}


def split_agent_proxy(text: str) -> tuple[str, str, str, int]:
    """Return (scheme, user, host, port) of the agent's proxy setting, as the MMA shows it
    (the password, which it never shows, is dropped): ``scheme://[user:password@]host:port``,
    the password being anything up to the last '@'."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "http", text
    userinfo, at, hostport = rest.rpartition("@")
    user = userinfo.partition(":")[0] if at else ""
    host, _, port = hostport.partition(":")
    return scheme, user, host, int(port) if port.isdigit() else 80


def _proxy(text: str, user: str) -> tuple[ProxyTarget, dict[str, Any]] | None:
    """Do what ConvertTo-HrwProxy does: parse, keep the secret apart, mask it for display."""
    if not text:
        return None
    full = text if "://" in text else "http://" + text
    parts = urlsplit(full)
    name = unquote(parts.username or "") or user
    secret = unquote(parts.password or "")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or ""
    masked = f"{parts.scheme}://" + (f"{name}:***@" if name else "") + f"{host}:{port}"
    target = ProxyTarget(host=host, port=port, user=name, secret=secret)
    return target, {"Url": masked, "Host": host, "Port": port, "HasCredentials": bool(name)}


def _part_code(block: str, part: str) -> str:
    """Return the code of one ``"$HrwB PART <part>"`` of a block's text (up to the next part)."""
    marker = f'"$HrwB PART {part}"'
    if marker not in block:
        return ""
    after = block.split(marker, 1)[1]
    return after.split('"$HrwB PART ', 1)[0]


_READ_AS_STRING = re.compile(r"(?P<field>\w+)\s*=\s*\[string\]\$(?P<var>\w+)\.(?P<member>\w+)\s*$")


def _agent_part(state: RunState) -> list[str]:
    """Answer the agent part: the MMA's COM object, checked member by member.

    The COM use in the part's code is checked against the modelled class first
    (:mod:`lab.winrm_emulator.com_objects`), so a wrong member name fails as on a real
    host. Property values come from the profile: ``proxyUrl`` is the agent's proxy without
    credentials, ``proxyUsername`` its user name; a property read leniently that the class
    lacks is ``$null`` (an empty string once cast).
    """
    host = state.host
    code = _part_code(state.code.get("worker", ""), "agent")
    registered = {}
    if _agent_installed(state):
        # An agent build whose COM object lacks members: the profile's agent_com_lacks.
        lacks = {str(name).lower() for name in state.profile.get("agent_com_lacks", [])}
        model = com_objects.MGMT_SVC_CFG
        registered[model.prog_id.lower()] = replace(
            model, methods=model.methods - lacks, properties=model.properties - lacks
        )
    failure = com_objects.check(code, registered)
    if failure is not None and not failure.in_strict_scope:
        return _error(state, PsError(failure.error_id, failure.category, failure.message))
    values = {"proxyurl": "", "proxyusername": ""}
    if host.proxy:
        scheme, proxy_user, proxy_host, proxy_port = split_agent_proxy(host.proxy)
        values["proxyurl"] = f"{scheme}://{proxy_host}:{proxy_port}"
        values["proxyusername"] = proxy_user
    read: dict[str, str] = {}
    for line in code.split("\n"):
        found = _READ_AS_STRING.search(line.strip())
        if found and found.group("var").lower() == "config":
            read[found.group("field").lower()] = values.get(found.group("member").lower(), "")
    proxy_error = None
    if failure is not None:
        read = {}
        proxy_error = {"ErrorId": failure.error_id, "Message": failure.message}
    state.agent = {
        "Workspaces": [host.workspace_id, *host.profile.get("other_workspaces", [])],
        "ProxyUrl": read.get("url", ""),
        "ProxyUsername": read.get("username", ""),
        "ProxyError": proxy_error,
    }
    return _json(state.agent)


@answers("worker", version=5)
def worker(state: RunState) -> list[str]:
    """Answer the worker block: MMA configuration, registered workers, version, effective."""
    host, params = state.host, state.params
    body = [state.mark("PART", "agent"), *_agent_part(state)]
    body.append(state.mark("PART", "workers"))
    state.workers = _registered_workers(state) if _agent_installed(state) else []
    body += _json(state.workers)
    body.append(state.mark("PART", "version"))
    if _agent_installed(state):
        version = str(state.profile.get("agent_version", DEFAULT_AGENT_VERSION))
        body += _json({"Name": version})
    body.append(state.mark("PART", "effective"))
    workspace = params.get("workspace_id") or None
    if not workspace and state.agent and state.agent["Workspaces"]:
        workspace = state.agent["Workspaces"][0]
    endpoints: dict[str, str | None] = {"agentsvc": None, "jrds": None, "oms": None, "ods": None}
    if workspace:
        endpoints["agentsvc"] = f"{workspace}.agentsvc.azure-automation.net"
        endpoints["oms"] = f"{workspace}.oms.opinsights.azure.com"
        endpoints["ods"] = f"{workspace}.ods.opinsights.azure.com"
    if state.workers:
        endpoints["jrds"] = urlsplit(state.workers[0]["JobRuntimeDataServiceUri"]).hostname
    overrides = params.get("endpoints") or {}
    for role in endpoints:
        if overrides.get(role):
            endpoints[role] = str(overrides[role])
    parsed = None
    source = "none"
    if params.get("proxy") is not None:
        parsed, source = _proxy_from_params(params["proxy"], state.proxy_secret), "params"
    elif state.agent and state.agent["ProxyUrl"]:
        parsed = _proxy(state.agent["ProxyUrl"], state.agent["ProxyUsername"])
        source = "agent"
    if parsed is not None:
        state.proxy = parsed[0]
        state.proxy_shown = {**parsed[1], "Source": source}
    state.targets = [
        Endpoint(role, name, host.resolve.get(name)) for role, name in endpoints.items() if name
    ]
    effective = {
        "WorkspaceId": workspace,
        "Agentsvc": endpoints["agentsvc"],
        "Jrds": endpoints["jrds"],
        "Oms": endpoints["oms"],
        "Ods": endpoints["ods"],
        "Proxy": state.proxy_shown,
    }
    body += _json(effective)
    return _block("worker", state, body)


@answers("network", version=2)
def network(state: RunState) -> list[str]:
    """Answer the network block by probing the endpoints for real, concurrently."""
    port = int(state.profile.get("endpoint_port", 443))
    proxy = state.proxy
    if proxy is not None and proxy.host in state.host.resolve:
        proxy = ProxyTarget(state.host.resolve[proxy.host], proxy.port, proxy.user, proxy.secret)
    timeout_ms = int(state.params.get("connect_timeout_ms", 5000))
    # SCHANNEL's TLS 1.2 client switched off (Enabled=0) leaves the Tls12-only probe nothing
    # to offer; DisabledByDefault=1 alone does not, since the probe asks for TLS 1.2 by name.
    tls12_off = _registry_dword(state.profile.get("tls12_client_enabled")) == 0
    results = probe_all(state.targets, port, proxy, timeout_ms, tls12_off)
    if state.proxy is not None:
        for result in results:  # the script reports the proxy as configured, not resolved
            result["ViaProxy"] = f"{state.proxy.host}:{state.proxy.port}"
    return _block("network", state, _json(results))


def _log_error(state: RunState, log: str) -> PsError | None:
    if log in state.profile.get("event_logs_missing", []):
        return PsError(
            "NoMatchingLogsFound,Microsoft.PowerShell.Commands.GetWinEventCommand",
            "ObjectNotFound",
            f'There is not an event log on the localhost computer that matches "{log}".',
        )
    if log in state.profile.get("event_logs_denied", []):
        return PsError(
            "System.UnauthorizedAccessException,Microsoft.PowerShell.Commands.GetWinEventCommand",
            "NotSpecified",
            "Attempted to perform an unauthorized operation.",
        )
    return None


def _events_in(state: RunState, log: str, start: datetime) -> list[dict[str, Any]]:
    """Return the log's events since ``start``, newest first, as Read-HrwEvents shapes them."""
    found: list[dict[str, Any]] = []
    for event in state.profile.get("events", []) or []:
        if event.get("log") != log:
            continue
        created = state.now - timedelta(minutes=float(event.get("minutes_ago", 0)))
        if created < start:
            continue
        level = event.get("level", 4)
        failure = event.get("format_error")
        found.append(
            {
                "Id": int(event["id"]),
                "ProviderName": str(event.get("provider", "")),
                "Level": LEVEL.get(level, level) if isinstance(level, str) else int(level),
                "TimeCreated": PsDate(created),
                # FormatDescription() either returns the text or throws; the script keeps both.
                "Message": None if failure else event.get("message"),
                "MessageError": str(failure) if failure else None,
            }
        )
    found.sort(key=lambda e: e["TimeCreated"].moment, reverse=True)
    return found


def _query(state: RunState, log: str, pick: list[dict[str, Any]]) -> list[str]:
    """Return what Read-HrwEvents prints for one log: its failure, or the events (or nothing).

    Get-WinEvent's NoMatchingEventsFound goes to the error variable and is dropped, so a log
    without matching events prints nothing; a missing or denied log prints its error.
    """
    failure = _log_error(state, log)
    if failure is not None:
        return _error(state, failure)
    return _json(pick)


def _round_trip(moment: datetime) -> str:
    """Return ``moment`` as .NET's ToUniversalTime().ToString('o') writes it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


@answers("events", version=3)
def events(state: RunState) -> list[str]:
    """Answer the events block: the window, each configured log query, the SMA scan.

    Messages are formatted per event (a profile's ``format_error`` stays with its event);
    the scan keeps the events whose message could not be formatted.
    """
    hours = float(state.params.get("lookback_hours", 24))
    start = state.now - timedelta(hours=hours)
    body = [
        state.mark("PART", "window"),
        *_json({"LookbackHours": hours, "StartTime": _round_trip(start)}),
    ]
    for query in state.params.get("event_logs", []):
        log, ids = str(query["log"]), {int(i) for i in query.get("ids", [])}
        body.append(state.mark("PART", f"log {log}"))
        in_window = _events_in(state, log, start)
        body += _query(state, log, [e for e in in_window if e["Id"] in ids][:200])
    body.append(state.mark("PART", f"scan {SMA_LOG}"))
    scanned = _events_in(state, SMA_LOG, start)[:500]
    kept = [e for e in scanned if e["MessageError"] or SMA_EXIT_TEXT in str(e["Message"] or "")]
    body += _query(state, SMA_LOG, kept)
    return _block("events", state, body)
