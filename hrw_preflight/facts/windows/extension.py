"""The Windows probe's extension-based worker sections, parsed from the script's parts.

Pure functions from the parts of the ``arc``, ``extension``, ``ext_service``, ``identity``,
``remnants`` and ``arc_acl`` blocks of ``windows_facts.ps1`` to the shapes of
:mod:`hrw_preflight.facts.ext_schema`, reading what Windows PowerShell 5.1 prints: one object
bare and none as nothing, enums as numbers, ``\\/Date(ms)\\/`` times, NTAccount as
``{"Value": ...}``, and Get-WinEvent's error records.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from hrw_preflight.facts.ext_schema import (
    ARC_IDENTITY_ENDPOINT,
    WINDOWS_HANDLER,
    WINDOWS_PLUGINS_DIR,
    WINDOWS_SERVICE,
    AclGrant,
    ArcAclFacts,
    ArcFacts,
    EndpointAnswer,
    ExtensionFacts,
    ExtensionStatus,
    IdentityFacts,
    RemnantFacts,
    ServiceFacts,
    SubStatus,
)
from hrw_preflight.facts.framing import Unreadable

EXTENSION_SECTIONS = ("arc", "extension", "ext_service", "identity", "remnants", "arc_acl")
ARC_SERVICES = ("himds", "ExtensionService", "GCArcService")
ARC_TOKENS_DIR = "C:\\ProgramData\\AzureConnectedMachineAgent\\Tokens"
HANDLER_DIR = f"{WINDOWS_PLUGINS_DIR}\\{WINDOWS_HANDLER}"
V1_KEY = "HKLM:\\SOFTWARE\\Microsoft\\HybridRunbookWorker"
V2_KEY = "HKLM:\\SOFTWARE\\Microsoft\\HybridRunbookWorkerV2"
AZURE_HW_KEY = "HKLM:\\SOFTWARE\\Microsoft\\Azure\\HybridWorker"
EXIT_TEXT = "Win32 Process Exited with code [2148734720]"
# FileSystemRights bits (System.Security.AccessControl): Read is ReadData, ReadExtended-
# Attributes, ReadAttributes and ReadPermissions; ReadAndExecute adds ExecuteFile.
READ = 0x20089
READ_AND_EXECUTE = 0x200A9
ALLOW = 0
_NO_EVENTS = "NoMatchingEventsFound"
_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


class PartLike(Protocol):
    """One part of a section block (see probe.Part)."""

    @property
    def text(self) -> str: ...

    @property
    def error(self) -> Any: ...  # probe.ErrorRecord or None


Parts = Mapping[str, PartLike]


def _value(section: str, parts: Parts, name: str) -> Any:
    """Return a part's decoded JSON (None when it printed nothing); raise Unreadable when
    the part is missing or reports an error."""
    part = parts.get(name)
    if part is None:
        raise Unreadable(f"{section} section: part '{name}' is missing")
    if part.error is not None:
        raise Unreadable(f"{section} section ({name}): {part.error.message}")
    if not part.text:
        return None
    try:
        return json.loads(part.text)
    except json.JSONDecodeError as exc:
        raise Unreadable(
            f"garbled JSON in the {section} section (part '{name}'): {exc.msg}"
        ) from None


def _objects(section: str, value: Any) -> list[dict[str, Any]]:
    """Return a pipeline's output as a list of objects (5.1 writes one object bare)."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(item, dict) for item in items):
        raise Unreadable(f"{section} section: expected JSON objects")
    return items


def _one(section: str, value: Any, what: str) -> dict[str, Any] | None:
    found = _objects(section, value)
    if len(found) > 1:
        raise Unreadable(f"{section} section: expected one {what}, got {len(found)}")
    return found[0] if found else None


def _int_or_none(section: str, value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Unreadable(f"{section} section: {field} is not an integer ({value!r})")
    return value


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(piece) for piece in re.findall(r"\d+", name))


def arc(parts: Parts) -> dict[str, Any]:
    """Return the ``arc`` section (:class:`ArcFacts`): the Connected Machine agent's
    services (Win32_Service); himds's existence marks the host Arc-enabled."""
    services = {str(s.get("Name")): s for s in _objects("arc", _value("arc", parts, "services"))}
    folder = _one("arc", _value("arc", parts, "folder"), "folder") or {}
    himds = services.get("himds")
    markers = [
        f"service {name} ({services[name].get('State')})"
        for name in ARC_SERVICES
        if name in services
    ]
    if himds is None:
        data: ArcFacts = {"installed": False, "markers": [], "himds_running": None, "himds": "-"}
        return dict(data)
    if folder.get("Exists"):
        markers.append(str(folder.get("Path")))
    data = {
        "installed": True,
        "markers": markers,
        "himds_running": himds.get("State") == "Running",
        "himds": f"himds State {himds.get('State')}, StartMode {himds.get('StartMode')}",
    }
    return dict(data)


def _status(section: str, seq: int, raw: dict[str, Any]) -> ExtensionStatus:
    subs: list[SubStatus] = []
    for sub in _objects(section, raw.get("Substatus")):
        subs.append(
            {
                "name": _text(sub.get("Name")),
                "status": _text(sub.get("Status")),
                "code": _int_or_none(section, sub.get("Code"), "substatus Code"),
                "message": _text(sub.get("Message")),
            }
        )
    status = _text(raw.get("Status"))
    if not status:
        raise Unreadable(f"{raw.get('File')} holds no status.status: not a guest agent status file")
    return {
        "seq": seq,
        "file": _text(raw.get("File")),
        "status": status,
        "code": _int_or_none(section, raw.get("Code"), "Code"),
        "operation": _text(raw.get("Operation")) or None,
        "configuration_applied": _text(raw.get("ConfigurationAppliedTime")) or None,
        "message": _text(raw.get("Message")),
        "substatus": subs,
    }


def extension(parts: Parts, account_override: str | None = None) -> dict[str, Any]:
    """Return the ``extension`` section (:class:`ExtensionFacts`): the newest handler
    version folder, the public settings of the highest ``RuntimeSettings\\<seq>.settings``,
    element 0 of ``Status\\<seq>.status`` and the account endpoints the probe tested."""
    versions = _objects("extension", _value("extension", parts, "versions"))
    names = [str(v.get("Name")) for v in versions if v.get("Name")]
    newest = max(names, key=_version_key) if names else None
    folder = f"{HANDLER_DIR}\\{newest}" if newest else None
    settings = _one("extension", _value("extension", parts, "settings"), "settings file")
    status = _one("extension", _value("extension", parts, "status"), "status file")
    effective = _one("extension", _value("extension", parts, "effective"), "effective object")
    if effective is None:
        raise Unreadable("extension section: the effective settings are missing")
    seq = None
    if settings is not None:
        seq = _int_or_none("extension", settings.get("Seq"), "Seq")
    url = _text(effective.get("AccountUrl")) or None
    shown = effective.get("AccountUrlSource")
    source: Literal["settings", "override"] | None
    if shown == "settings":
        source = "settings"
    elif shown == "override":
        source = "override"
    elif shown is None:
        source = None
    else:
        raise Unreadable(f"extension section: unknown AccountUrlSource {shown!r}")
    if url is None and account_override:
        url, source = account_override, "override"
    endpoints = effective.get("Endpoints")
    if not isinstance(endpoints, dict):
        raise Unreadable("extension section: Endpoints is not an object")
    data: ExtensionFacts = {
        "installed": newest is not None,
        "handler": WINDOWS_HANDLER,
        "folder": folder,
        "version": newest,
        "handler_state_kept": False,
        "handler_state": None,
        "seq": seq,
        "seq_source": "settings" if seq is not None else None,
        "status": _status("extension", seq, status)
        if status is not None and seq is not None
        else None,
        "automation_account_url": url,
        "account_url_source": source,
        "proxy": _text(effective.get("Proxy")) or None,
        "endpoints": {str(k): (str(v) if v else None) for k, v in endpoints.items()},
    }
    return dict(data)


def ext_service(parts: Parts) -> dict[str, Any]:
    """Return the ``ext_service`` section (:class:`ServiceFacts`): HybridWorkerService's
    Win32_Service State and StartMode (not installed when the query printed nothing)."""
    found = _one("ext_service", _value("ext_service", parts, ""), "service")
    data: ServiceFacts = {
        "name": WINDOWS_SERVICE,
        "exists": found is not None,
        "state": _text(found.get("State")) if found else "",
        "start": _text(found.get("StartMode")) if found else "",
        "worker_user": None,
        "worker_uid": None,
        "processes": [],
    }
    return dict(data)


def _answer(section: str, raw: dict[str, Any] | None, what: str) -> EndpointAnswer:
    if raw is None:
        raise Unreadable(f"{section} section: {what} printed no answer")
    answered = raw.get("Answered")
    if not isinstance(answered, bool):
        raise Unreadable(f"{section} section: {what} Answered is not true or false")
    return {
        "answered": answered,
        "status": _int_or_none(section, raw.get("Status"), f"{what} Status"),
        "token_present": raw.get("TokenPresent") is True,
        "challenge": _text(raw.get("Challenge")) or None,
        "error": _text(raw.get("Error")) or None,
    }


def identity(parts: Parts) -> dict[str, Any]:
    """Return the ``identity`` section (:class:`IdentityFacts`): what IMDS and, on an
    Arc-enabled server, the local identity endpoint answered (no token is ever printed)."""
    imds = _answer(
        "identity", _one("identity", _value("identity", parts, "imds"), "answer"), "IMDS"
    )
    arc_raw = _one("identity", _value("identity", parts, "arc"), "answer")
    arc_answer = None if arc_raw is None else _answer("identity", arc_raw, ARC_IDENTITY_ENDPOINT)
    data: IdentityFacts = {"imds": imds, "arc": arc_answer}
    return dict(data)


def remnants(parts: Parts) -> dict[str, Any]:
    """Return the ``remnants`` section (:class:`RemnantFacts`): the registry keys of each
    kind that exist, plus the V2 registrations found under HybridRunbookWorkerV2."""
    keys = {
        str(k.get("Path")): bool(k.get("Exists"))
        for k in _objects("remnants", _value("remnants", parts, "keys"))
    }
    if set(keys) != {V1_KEY, V2_KEY, AZURE_HW_KEY}:
        raise Unreadable("remnants section: the registry keys were not all tested")
    registrations = [
        {
            "key": _text(r.get("Key")),
            "jrds_uri": _text(r.get("JobRuntimeDataServiceUri")),
            "azure_resource_id": _text(r.get("AzureResourceId")),
        }
        for r in _objects("remnants", _value("remnants", parts, "v2"))
    ]
    data: RemnantFacts = {
        "agent": [V1_KEY] if keys[V1_KEY] else [],
        "extension": [k for k in (V2_KEY, AZURE_HW_KEY) if keys[k]],
    }
    return {**data, "v2_registrations": registrations}


def _identity(value: Any) -> str:
    """Return an IdentityReference as text (5.1 writes an NTAccount as {"Value": ...})."""
    if isinstance(value, dict):
        value = value.get("Value")
    return _text(value)


def _same_account(entry: str, account: str) -> bool:
    """Return whether an ACL entry's account is ``account`` (``DOMAIN\\user`` or ``user``)."""
    entry, account = entry.lower(), account.lower()
    if entry == account:
        return True
    return "\\" not in account and entry.rsplit("\\", 1)[-1] == account


def grant(
    section: str, path: str, entries: list[dict[str, Any]], account: str, rights: int
) -> AclGrant:
    """Return whether ``account`` holds ``rights`` on ``path`` through an Allow entry that
    names it and is not inherited; a Deny entry naming it for any of those rights refuses."""
    own = []
    for entry in entries:
        if not _same_account(_identity(entry.get("IdentityReference")), account):
            continue
        mask = _int_or_none(section, entry.get("FileSystemRights"), "FileSystemRights") or 0
        kind = _int_or_none(section, entry.get("AccessControlType"), "AccessControlType")
        if kind != ALLOW and mask & rights:
            return {"path": path, "granted_directly": False}
        if kind == ALLOW and entry.get("IsInherited") is False:
            own.append(mask)
    allowed = 0
    for mask in own:
        allowed |= mask
    return {"path": path, "granted_directly": allowed & rights == rights}


def _event_time(value: Any) -> str:
    match = _DATE.match(_text(value))
    if not match:
        raise Unreadable(f"arc_acl section: unreadable TimeCreated {value!r}")
    return datetime.fromtimestamp(int(match.group(1)) / 1000, UTC).isoformat(timespec="seconds")


def arc_acl(parts: Parts) -> dict[str, Any]:
    """Return the ``arc_acl`` section (:class:`ArcAclFacts`): the custom credential's own
    grants on the Tokens and extension folders (Arc-enabled servers only) and the
    Microsoft-SMA events holding exit code 2148734720."""
    head = _one("arc_acl", _value("arc_acl", parts, "account"), "account") or {}
    account = _text(head.get("Account")) or None
    tokens = folder = None
    if account and head.get("Arc") is True:
        pairs = []
        for path, rights in ((ARC_TOKENS_DIR, READ), (HANDLER_DIR, READ_AND_EXECUTE)):
            entries = _objects("arc_acl", _value("arc_acl", parts, f"acl {path}"))
            pairs.append(grant("arc_acl", path, entries, account, rights))
        tokens, folder = pairs
    exits = parts.get("exits")
    events: list[dict[str, str]] = []
    if exits is None or exits.error is None or _NO_EVENTS not in str(exits.error.error_id):
        for raw in _objects("arc_acl", _value("arc_acl", parts, "exits")):
            events.append(
                {"time": _event_time(raw.get("TimeCreated")), "message": _text(raw.get("Message"))}
            )
    data: ArcAclFacts = {
        "account": account,
        "tokens": tokens,
        "extension_folder": folder,
        "exit_2148734720": events,
    }
    return dict(data)
