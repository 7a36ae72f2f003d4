"""The Windows probe: one PowerShell 5.1 run per host, parsed into facts sections.

The probe script (``windows_facts.ps1``) is too long for a command line (cmd.exe stops at
8191 characters), so the command line carries only a fixed bootstrap that reads the
parameters (first line, base64 JSON) and the script (the rest) from standard input.
The script prints one marked block per section; :func:`parse_output` turns the blocks into
:class:`~hrw_preflight.facts.Section` objects following docs/design.md section 1.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from itertools import pairwise
from typing import Any, TypeVar

from hrw_preflight.facts.clock import CommandTiming as CommandTiming
from hrw_preflight.facts.clock import clock_data
from hrw_preflight.facts.ext_schema import EXTENSION_ROLES
from hrw_preflight.facts.framing import (
    CommandResult,
    Tampered,
    Unreadable,
    check_boundary,
    decode_output,
    new_boundary,
    printable,
    split_sections,
    tampered_sections,
    utf8_policy,
)
from hrw_preflight.facts.model import Section
from hrw_preflight.facts.params import ProbeParams
from hrw_preflight.facts.schema import conform
from hrw_preflight.facts.windows import extension
from hrw_preflight.facts.windows.clixml import decode_stderr
from hrw_preflight.facts.windows.extension import EXTENSION_SECTIONS
from hrw_preflight.facts.windows.kind_markers import windows_kind
from hrw_preflight.hosts.proxy_conf import ProxyFormatError, parse_agent_proxy, proxy_password

SECTIONS = (
    "service",
    "hardware",
    "pressure",
    "prereqs",
    "clock",
    "worker",
    "network",
    "events",
    *EXTENSION_SECTIONS,
)
SMA_LOG = "Microsoft-SMA/Operational"
OPS_LOG = "Operations Manager"

# Reads the parameter line and the script from stdin and runs the script with it.
# Standard input: the parameters (base64 JSON), the proxy password (base64, or an empty
# line), then the script. The password is read into a variable the script reads, so it is
# in no script text and no parameter that PowerShell's logging records.
BOOTSTRAP = "$i=[Console]::In;$p=$i.ReadLine();$HrwProxySecretB64=$i.ReadLine();$s=$i.ReadToEnd();& ([scriptblock]::Create($s)) $p"  # noqa: E501 (one line: the emulator reads it)
COMMAND_PREFIX = "powershell -NoProfile -NonInteractive -EncodedCommand "

_NO_EVENTS = "NoMatchingEventsFound"
_NO_LOG = "NoMatchingLogsFound"
# Win32_Service's documented State and StartMode strings.
_SERVICE_STATES = {
    "Stopped",
    "Start Pending",
    "Stop Pending",
    "Running",
    "Continue Pending",
    "Pause Pending",
    "Paused",
    "Unknown",
}
_START_MODES = {"Boot", "System", "Auto", "Manual", "Disabled"}
_TCP_STATES = {"ok", "timeout", "refused", "unreachable", "unresolved", "proxy-refused", "error"}
_TLS_STATES = {"ok", "failed", "not-attempted"}
# Where a Windows chain came from: what the server sent (leaf + the chain's ExtraStore), only
# the leaf, or nothing.
_CHAIN_SOURCES = {"sent", "leaf-only", "none"}
_ROLES = {"agentsvc", "jrds", "oms", "ods"}
_NETWORK_ROLES = _ROLES | set(EXTENSION_ROLES)
_PROXY_AUTH_HINT = (
    "; the agent's proxy password cannot be read from the MMA configuration,"
    " give the proxy with its credentials in hrw_proxy"
)
_DWORD = 0xFFFFFFFF
_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_GUID = "[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
# Update Management registers its system worker in a group named "<computer>_<agent guid>".
_SYSTEM_GROUP = re.compile(rf"^.+_{_GUID}$")


R = TypeVar("R", bound=CommandResult)


@dataclass(frozen=True)
class ErrorRecord:
    """An error the script caught and printed instead of a part's data."""

    error_id: str
    category: str
    message: str


@dataclass(frozen=True)
class Part:
    """One part of a section block: JSON text, or the error record that replaced it."""

    name: str
    text: str
    error: ErrorRecord | None


def script_text() -> str:
    """Return the probe script shipped with the package (ASCII by construction)."""
    return (resources.files("hrw_preflight.facts.windows") / "windows_facts.ps1").read_text("ascii")


def params_document(params: ProbeParams, boundary: str) -> dict[str, Any]:
    """Return the parameters as the JSON document the script decodes.

    ``boundary`` starts every marker line the script prints (see
    :mod:`hrw_preflight.facts.framing`). Exists so the lab emulator and tests see exactly
    what the host is told.
    """
    return {
        "boundary": check_boundary(boundary),
        "lookback_hours": float(params.lookback_hours),
        "connect_timeout_ms": max(1, round(params.connect_timeout_s * 1000)),
        "workspace_id": params.workspace_id,
        "endpoints": {
            role: host for role, host in params.endpoint_overrides.items() if role in _ROLES
        },
        "automation_account_url": params.automation_account_url,
        "worker_credential_account": params.worker_credential_account,
        "proxy": _proxy_param(params.proxy),
        "event_logs": [{"log": log, "ids": list(ids)} for log, ids in params.event_ids.items()],
    }


def _proxy_param(text: str | None) -> dict[str, Any] | str | None:
    """Return the ``proxy`` parameter: None (use the agent's), "" (none), or the setting
    split into host, port and user. Never the password (see :func:`build_invocation`).

    Raises ProxyFormatError for a value the agent would refuse, or one without a port.
    """
    if text is None:
        return None
    parsed = parse_agent_proxy(text, "inventory value hrw_proxy")
    if parsed is None:
        return ""
    if parsed.port is None:
        raise ProxyFormatError("inventory value hrw_proxy names no port: write host:port")
    return {"host": parsed.host, "port": parsed.port, "user": parsed.user or ""}


def _proxy_secret_line(text: str | None) -> str:
    """Return the stdin line carrying the proxy password: base64 of its UTF-8, or ""."""
    password = proxy_password(text)
    return base64.b64encode(password.encode("utf-8")).decode("ascii") if password else ""


def encode_command(text: str) -> str:
    """Return ``text`` as powershell.exe's -EncodedCommand wants it: base64 of UTF-16LE."""
    return base64.b64encode(text.encode("utf-16-le")).decode("ascii")


def build_invocation(params: ProbeParams, boundary: str) -> tuple[str, bytes]:
    """Return the command line and the stdin bytes of one probe run with ``boundary``.

    The parameters travel as one base64 line of JSON on stdin, so inventory values are
    data the script decodes, never code it runs, and the boundary is on no command line.
    """
    document = json.dumps(params_document(params, boundary), separators=(",", ":"))
    line = base64.b64encode(document.encode("utf-8")).decode("ascii")
    secret = _proxy_secret_line(params.proxy)
    stdin = (line + "\r\n" + secret + "\r\n" + script_text()).encode("ascii")
    return COMMAND_PREFIX + encode_command(BOOTSTRAP), stdin


def collect(run: Callable[[str, bytes], R], params: ProbeParams) -> dict[str, Section]:
    """Ask the host one command (the whole probe) and return its sections.

    The controller's clock is read just before and just after that one command, so the
    clock section can compare the host's time with the controller's.
    """
    boundary = new_boundary()
    try:
        command, stdin = build_invocation(params, boundary)
    except ProxyFormatError as exc:  # a bad hrw_proxy: probe the rest, the network is an error
        sections = collect(run, dataclasses.replace(params, proxy=""))
        sections["network"] = Section.failed("network", str(exc))
        return sections
    started = time.time()
    result = run(command, stdin)
    ended = time.time()
    timing = CommandTiming(started=started, ended=ended)
    return parse_output(
        result.stdout_bytes, result.stderr_bytes, result.rc, timing, boundary=boundary
    )


# --- splitting the output -------------------------------------------------------------


def _parts(section: str, lines: list[str], boundary: str) -> dict[str, Part]:
    """Split a block's lines into its parts (a block without markers is one part "").

    Raises :class:`Unreadable` when a part name appears twice (the script prints each once).
    """
    part_mark, error_mark = f"{boundary} PART ", f"{boundary} ERROR"
    chunks: list[tuple[str, list[str]]] = [("", [])]
    for line in lines:
        if line.startswith(part_mark):
            chunks.append((line[len(part_mark) :].strip(), []))
        else:
            chunks[-1][1].append(line)
    parts: dict[str, Part] = {}
    for name, body in chunks:
        text = "\n".join(body).strip()
        if name == "" and not text and len(chunks) > 1:
            continue
        if name in parts:
            raise Unreadable(f"{_where(section, name)} appears twice")
        error = None
        if text.startswith(error_mark):
            error = _error_record(section, name, text[len(error_mark) :])
            text = ""
        parts[name] = Part(name=name, text=text, error=error)
    return parts


def _error_record(section: str, part: str, text: str) -> ErrorRecord:
    value = _load_json(section, part, text)
    if not isinstance(value, dict):
        raise Unreadable(f"{_where(section, part)}: error record is not a JSON object")
    return ErrorRecord(
        error_id=str(value.get("ErrorId") or ""),
        category=str(value.get("Category") or ""),
        message=str(value.get("Message") or "").strip(),
    )


def _where(section: str, part: str) -> str:
    return f"{section} section" + (f" (part '{part}')" if part else "")


def _load_json(section: str, part: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise Unreadable(
            f"garbled JSON in the {_where(section, part)}: {exc.msg} at line {exc.lineno}"
        ) from None


def _value(section: str, parts: dict[str, Part], name: str) -> Any:
    """Return the decoded JSON of a part (None when the pipeline yielded nothing).

    Raises :class:`Unreadable` when the part is missing, failed or garbled.
    """
    part = parts.get(name)
    if part is None:
        raise Unreadable(f"the {_where(section, name)} is missing from the probe output")
    if part.error is not None:
        raise Unreadable(f"{_where(section, name)}: {part.error.message}")
    if not part.text:
        return None
    return _load_json(section, name, part.text)


def _objects(section: str, value: Any) -> list[dict[str, Any]]:
    """Return a pipeline's JSON as a list: 5.1 writes one object bare and none as nothing."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(item, dict) for item in items):
        raise Unreadable(f"{section} section: expected JSON objects, got {type(value).__name__}")
    return items


def _int(section: str, value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Unreadable(f"{section} section: {field} is not an integer ({value!r})")
    return value


# --- sections ---------------------------------------------------------------------------


def _service(parts: dict[str, Part]) -> dict[str, Any]:
    """Return HealthService as Win32_Service shows it: ``State`` and ``StartMode`` strings.

    No object means no such service; more than one cannot happen for a name filter and is
    unreadable rather than guessed at.
    """
    found = _objects("service", _value("service", parts, ""))
    if not found:
        return {"exists": False, "name": "HealthService", "state": None, "start_mode": None}
    if len(found) != 1:
        raise Unreadable(f"service section: expected one service, got {len(found)}")
    service = found[0]
    state, mode = service.get("State"), service.get("StartMode")
    if state not in _SERVICE_STATES:
        raise Unreadable(f"service section: State is not a Win32_Service state ({state!r})")
    if mode not in _START_MODES:
        raise Unreadable(f"service section: StartMode is not a Win32_Service mode ({mode!r})")
    return {
        "exists": True,
        "name": str(service.get("Name") or "HealthService"),
        "state": state,
        "start_mode": mode,
    }


def _hardware(parts: dict[str, Part]) -> dict[str, Any]:
    sockets = _objects("hardware", _value("hardware", parts, "processor"))
    if not sockets:
        raise Unreadable("hardware section: Win32_Processor returned no processor")
    logical = sum(
        _int("hardware", s.get("NumberOfLogicalProcessors"), "NumberOfLogicalProcessors")
        for s in sockets
    )
    systems = _objects("hardware", _value("hardware", parts, "computersystem"))
    if len(systems) != 1:
        raise Unreadable("hardware section: Win32_ComputerSystem did not return one object")
    memory = _int("hardware", systems[0].get("TotalPhysicalMemory"), "TotalPhysicalMemory")
    return {"logical_processors": logical, "memory_bytes": memory}


def _cpu_load(samples: list[dict[str, Any]]) -> tuple[float, float]:
    """Return (busy fraction of all processors, seconds measured) from raw _Total samples.

    ``PercentProcessorTime`` of Win32_PerfRawData_PerfOS_Processor counts idle time in
    100 ns units (an inverse timer) and ``Timestamp_Sys100NS`` the time it was read, so busy
    = 1 - idle delta / time delta, over the first to the last sample.
    """
    if len(samples) < 2:
        raise Unreadable(f"pressure section: {len(samples)} processor sample(s), need 2 or more")
    idle = [
        _int("pressure", s.get("PercentProcessorTime"), "PercentProcessorTime") for s in samples
    ]
    stamp = [_int("pressure", s.get("Timestamp_Sys100NS"), "Timestamp_Sys100NS") for s in samples]
    if any(b <= a for a, b in pairwise(stamp)) or any(b < a for a, b in pairwise(idle)):
        raise Unreadable("pressure section: processor counter samples do not advance")
    elapsed = stamp[-1] - stamp[0]
    busy = 1 - (idle[-1] - idle[0]) / elapsed
    return min(1.0, max(0.0, busy)), elapsed / 1e7


def _pressure(parts: dict[str, Part]) -> dict[str, Any]:
    load, window = _cpu_load(_objects("pressure", _value("pressure", parts, "processor")))
    systems = _objects("pressure", _value("pressure", parts, "os"))
    if len(systems) != 1:
        raise Unreadable("pressure section: Win32_OperatingSystem did not return one object")
    free_kb = _int("pressure", systems[0].get("FreePhysicalMemory"), "FreePhysicalMemory")
    total_kb = _int("pressure", systems[0].get("TotalVisibleMemorySize"), "TotalVisibleMemorySize")
    return {
        "cpu_load": round(load, 4),
        "cpu_window_s": round(window, 3),
        "memory_available_bytes": free_kb * 1024,
        "memory_total_bytes": total_kb * 1024,
    }


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(piece) for piece in re.findall(r"\d+", name))


def _cloud_workspaces(agent: Any) -> list[str]:
    """Return the MMA's cloud workspace ids (``GetCloudWorkspaces()``), sorted and unique."""
    if not isinstance(agent, dict):
        raise Unreadable("worker section: the agent configuration is not a JSON object")
    value = agent.get("Workspaces")
    items = [] if value is None else value if isinstance(value, list) else [value]
    if not all(isinstance(item, str) for item in items):
        raise Unreadable("worker section: Workspaces is not a list of workspace ids")
    return sorted({item.strip() for item in items if item.strip()})


def _worker(parts: dict[str, Part]) -> dict[str, Any]:
    failure = parts["agent"].error if "agent" in parts else None
    if failure is not None and failure.error_id.startswith("NoCOMClassIdentified"):
        raise Unreadable(
            "worker section: the agent's COM object AgentConfigManager.MgmtSvcCfg is not "
            f"registered (is the Microsoft Monitoring Agent installed?): {failure.message}"
        )
    agent = _value("worker", parts, "agent")  # an unreadable agent configuration fails it
    proxy_error = None
    if isinstance(agent, dict) and isinstance(agent.get("ProxyError"), dict):
        failure = agent["ProxyError"]
        proxy_error = f"{failure.get('Message') or ''} ({failure.get('ErrorId') or '?'})".strip()
    workspaces = _cloud_workspaces(agent)
    workers = _objects("worker", _value("worker", parts, "workers"))
    versions = [str(v.get("Name")) for v in _objects("worker", _value("worker", parts, "version"))]
    effective = _value("worker", parts, "effective")
    if not isinstance(effective, dict):
        raise Unreadable("worker section: the effective settings are not a JSON object")
    groups = [str(w.get("Group") or "") for w in workers]
    proxy = effective.get("Proxy")
    shown_proxy = None
    if isinstance(proxy, dict):
        shown_proxy = {
            "url": str(proxy.get("Url") or ""),
            "host": str(proxy.get("Host") or ""),
            "port": _int("worker", proxy.get("Port"), "Proxy.Port"),
            "has_credentials": bool(proxy.get("HasCredentials")),
        }
    elif proxy is not None:
        raise Unreadable("worker section: Proxy is neither null nor an object")

    def host(key: str) -> str | None:
        value = effective.get(key)
        return str(value) if value else None

    return {
        "workspace_id": host("WorkspaceId"),
        "version": max(versions, key=_version_key) if versions else None,
        "update_management": any(_SYSTEM_GROUP.match(g) for g in groups),
        "user_worker": any(g and not _SYSTEM_GROUP.match(g) for g in groups),
        "proxy": shown_proxy,
        "proxy_error": proxy_error,
        "endpoints": {
            "agentsvc": host("Agentsvc"),
            "jrds": host("Jrds"),
            "oms": host("Oms"),
            "ods": host("Ods"),
        },
        "workspaces": workspaces,
    }


def _pem_chain(host: str, chain: Any) -> list[str]:
    if isinstance(chain, dict) and "value" in chain:
        chain = chain["value"]  # 5.1 writes a PSObject-wrapped array as {"value", "Count"}
    if not isinstance(chain, list):
        chain = [] if chain is None else [chain]
    pems = []
    for item in chain:
        try:
            der = base64.b64decode(str(item), validate=True)
        except binascii.Error:
            raise Unreadable(f"network section: certificate of {host} is not base64") from None
        pems.append(ssl.DER_cert_to_PEM_cert(der))
    return pems


def _network(parts: dict[str, Part]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for item in _objects("network", _value("network", parts, "")):
        host = str(item.get("Host") or "")
        role, tcp, tls = item.get("Role"), item.get("Tcp"), item.get("Tls")
        if (
            not host
            or role not in _NETWORK_ROLES
            or tcp not in _TCP_STATES
            or tls not in _TLS_STATES
        ):
            raise Unreadable(f"network section: malformed endpoint result for {host or '?'}")
        detail = str(item.get("Detail") or "")
        if item.get("PolicyErrors") and item.get("PolicyErrors") != "None":
            detail += f" (certificate policy: {item['PolicyErrors']})"
        if tcp == "proxy-refused" and " 407" in detail:
            detail += _PROXY_AUTH_HINT
        sent = _pem_chain(host, item.get("Chain"))
        built = _pem_chain(host, item.get("BuiltChain"))
        source = str(item.get("ChainSource") or ("sent" if sent else "none"))
        if source not in _CHAIN_SOURCES:
            raise Unreadable(f"network section: unknown ChainSource {source!r} for {host}")
        chain, judged = sent, ("sent" if sent else "none")
        if source == "leaf-only" and len(built) > 1:
            # Only the leaf came back as sent: judge the chain the host built, labelled so.
            chain, judged = built, "built"
        statuses = item.get("ChainStatus") or []
        results[host] = {
            "role": role,
            "via_proxy": item.get("ViaProxy") or None,
            "tcp": tcp,
            "tls": tls,
            "detail": detail,
            "chain_pem": chain,
            "chain_source": judged,
            "chain_built_pem": built,
            "chain_status": [
                str(s) for s in (statuses if isinstance(statuses, list) else [statuses])
            ],
            "policy_errors": str(item.get("PolicyErrors") or "") or None,
        }
    if not results:
        raise Unreadable(
            "network section: no endpoint to probe (no workspace id or endpoints were found; "
            "see the worker section, or set hrw_workspace_id / hrw_endpoints)"
        )
    return results


def _event_time(value: Any) -> str:
    text = str(value)
    match = _DATE.match(text)
    if match:
        moment = datetime.fromtimestamp(int(match.group(1)) / 1000, UTC)
        return moment.isoformat(timespec="seconds")
    try:
        return datetime.fromisoformat(text).astimezone(UTC).isoformat(timespec="seconds")
    except ValueError:
        raise Unreadable(f"events section: unreadable TimeCreated {text!r}") from None


@dataclass(frozen=True)
class _LogRead:
    """What one part said about a log: its events, or that it is missing or unreadable."""

    events: list[dict[str, Any]]
    missing: str | None = None
    unreadable: str | None = None


def _events_of(parts: dict[str, Part], name: str) -> _LogRead:
    part = parts.get(name)
    log = name.split(" ", 1)[-1]
    if part is not None and part.error is not None:
        if _NO_EVENTS in part.error.error_id:
            return _LogRead([])
        if _NO_LOG in part.error.error_id:
            return _LogRead([], missing=f"the event log '{log}' does not exist on the host")
        return _LogRead([], unreadable=f"event log '{log}' cannot be read: {part.error.message}")
    events = []
    for raw in _objects("events", _value("events", parts, name)):
        failure = raw.get("MessageError")
        events.append(
            {
                "id": _int("events", raw.get("Id"), "Id"),
                "provider": str(raw.get("ProviderName") or ""),
                "level": _int("events", raw.get("Level"), "Level"),
                "time": _event_time(raw.get("TimeCreated")),
                "message": str(raw.get("Message") or ""),
                "message_error": str(failure) if failure else None,
            }
        )
    return _LogRead(events)


def _events(parts: dict[str, Part]) -> dict[str, Any]:
    """Return the events per log, and apart from them the logs that are missing or unreadable.

    A log is queried by id and, for Microsoft-SMA, scanned by message; the parts are merged.
    One log that cannot be read no longer hides the others: each check then judges only the
    log it needs.
    """
    window = _value("events", parts, "window")
    if not isinstance(window, dict) or not isinstance(window.get("LookbackHours"), int | float):
        raise Unreadable("events section: the look-back window is missing")
    logs: dict[str, list[dict[str, Any]]] = {}
    missing: dict[str, str] = {}
    unreadable: dict[str, str] = {}
    for name in parts:
        kind, _, log = name.partition(" ")
        if kind not in ("log", "scan"):
            continue
        read = _events_of(parts, name)
        if read.missing:
            missing[log] = read.missing
        if read.unreadable:
            unreadable.setdefault(log, read.unreadable)
        merged = logs.setdefault(log, [])
        for event in read.events:
            if event not in merged:
                merged.append(event)
    for log in (OPS_LOG, SMA_LOG):
        if log not in logs:
            raise Unreadable(f"events section: the '{log}' log was not queried")
    for log in {**missing, **unreadable}:
        logs.pop(log, None)
    for events in logs.values():
        events.sort(key=lambda e: str(e["time"]), reverse=True)
    return {
        "lookback_hours": float(window["LookbackHours"]),
        "logs": logs,
        "missing_logs": missing,
        "unreadable_logs": {k: v for k, v in unreadable.items() if k not in missing},
    }


def _optional_int(section: str, value: Any, field: str) -> int | None:
    """Return a registry value as an int, or None when the value is absent."""
    return None if value is None else _int(section, value, field)


def _dword(section: str, value: Any, field: str) -> int | None:
    """Return a REG_DWORD as the registry shows it (unsigned), or None when absent.

    PowerShell hands a DWORD over as a signed Int32, so 0xFFFFFFFF arrives as -1.
    """
    number = _optional_int(section, value, field)
    return None if number is None else number & _DWORD


def _one_object(section: str, value: Any, what: str) -> dict[str, Any] | None:
    """Return the single object a part printed, None when it printed nothing."""
    found = _objects(section, value)
    if not found:
        return None
    if len(found) != 1:
        raise Unreadable(f"{section} section: expected one {what}, got {len(found)}")
    return found[0]


def _prereqs(parts: dict[str, Part]) -> dict[str, Any]:
    shell = _one_object("prereqs", _value("prereqs", parts, "powershell"), "PSVersion")
    version = None if shell is None else shell.get("Version")
    if version is not None and (not isinstance(version, str) or not version.strip()):
        raise Unreadable(f"prereqs section: PSVersion is not a version string ({version!r})")
    ndp = _one_object("prereqs", _value("prereqs", parts, "dotnet"), ".NET 4 Full key")
    release = None if ndp is None else _optional_int("prereqs", ndp.get("Release"), "Release")
    tls = _one_object("prereqs", _value("prereqs", parts, "tls12client"), "TLS 1.2 Client key")
    tls = tls or {}
    crypto = {}
    for view in _objects("prereqs", _value("prereqs", parts, "strongcrypto")):
        key = str(view.get("Key") or "")
        name = "32-bit" if "WOW6432Node" in key else "64-bit"
        crypto[name] = {
            "key": "HKLM\\" + key,
            "exists": bool(view.get("Exists")),
            "sch_use_strong_crypto": _dword(
                "prereqs", view.get("SchUseStrongCrypto"), "SchUseStrongCrypto"
            ),
            "system_default_tls_versions": _dword(
                "prereqs", view.get("SystemDefaultTlsVersions"), "SystemDefaultTlsVersions"
            ),
        }
    if set(crypto) != {"64-bit", "32-bit"}:
        raise Unreadable("prereqs section: the .NET strong crypto keys were not both read")
    return {
        "powershell_version": version,
        "dotnet_release": release,
        "dotnet_strong_crypto": crypto,
        "tls12_client": {
            "enabled": _dword("prereqs", tls.get("Enabled"), "Enabled"),
            "disabled_by_default": _dword(
                "prereqs", tls.get("DisabledByDefault"), "DisabledByDefault"
            ),
        },
    }


def _clock(parts: dict[str, Part], timing: CommandTiming | None) -> dict[str, Any]:
    reading = _one_object("clock", _value("clock", parts, ""), "clock reading")
    if reading is None:
        raise Unreadable("clock section: the host printed no time")
    millis = reading.get("UtcUnixMilliseconds")
    if isinstance(millis, bool) or not isinstance(millis, int | float):
        raise Unreadable(f"clock section: UtcUnixMilliseconds is not a number ({millis!r})")
    return dict(clock_data(millis / 1000, timing))


_BUILDERS: dict[str, Callable[[dict[str, Part]], dict[str, Any]]] = {
    "service": _service,
    "hardware": _hardware,
    "pressure": _pressure,
    "prereqs": _prereqs,
    "worker": _worker,
    "network": _network,
    "events": _events,
    "arc": extension.arc,
    "extension": extension.extension,
    "ext_service": extension.ext_service,
    "identity": extension.identity,
    "remnants": extension.remnants,
    "arc_acl": extension.arc_acl,
}


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else ""


def parse_output(
    stdout: bytes,
    stderr: bytes,
    rc: int,
    timing: CommandTiming | None = None,
    *,
    boundary: str,
) -> dict[str, Section]:
    """Return the Windows sections (:data:`SECTIONS`) read from one probe run's output.

    ``boundary`` is the one the run was started with. A section that is missing, cut off,
    garbled, not UTF-8 or reports an error that means "could not read" comes back as
    :meth:`Section.failed` with the reason and its raw text; a failed run (no sections at
    all) names PowerShell's own complaint from stderr; broken framing makes every section
    an error that says the output was tampered with. ``timing`` is when the controller
    sent the command and got its answer; without it the clock section cannot be judged.
    """
    text = decode_output(stdout).lstrip("\ufeff").replace("\r\n", "\n")
    try:
        framed = split_sections(text, boundary)
    except Tampered as exc:
        return tampered_sections(SECTIONS, exc)
    complaint = _first_line(decode_stderr(stderr)) if stderr.strip() else ""
    sections: dict[str, Section] = {}
    for name in SECTIONS:
        if name not in framed.sections:
            if name == framed.cut:
                reason = f"the probe output of the {name} section was cut off"
            else:
                reason = f"the probe printed no {name} section (exit code {rc})"
            if complaint:
                reason += f": {complaint}"
            cut_raw = framed.cut_body if name == framed.cut else ""
            sections[name] = Section.failed(name, reason, raw=printable(cut_raw))
            continue
        lines = framed.sections[name].split("\n")
        raw = framed.sections[name].strip("\n")
        try:
            parts = _parts(name, lines, boundary)
            data = _clock(parts, timing) if name == "clock" else _BUILDERS[name](parts)
        except Unreadable as exc:
            sections[name] = utf8_policy(Section.failed(name, str(exc), raw=raw))
            continue
        sections[name] = conform(utf8_policy(Section(name=name, data=data, raw=raw)))
    sections["kind"] = conform(windows_kind(sections))
    return sections
