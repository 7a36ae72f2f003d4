"""Answers to the extension-based worker's blocks of the probe script, from the profile.

What the ``arc``, ``extension``, ``extservice``, ``identity``, ``remnants`` and ``arcacl``
blocks print on a Windows PowerShell 5.1 host in the profile's state: Win32_Service's
State/StartMode as text, one object bare, FileSystemRights and AccessControlType as numbers,
IdentityReference as ``{"Value": ...}``, ``\\/Date(ms)\\/`` event times and Get-WinEvent's
error records. The identity endpoints are answered from the profile: the emulator holds the
lab's token the way IMDS would hand it out, and drops it as the script does, printing only
whether one came back.

Profile keys read (validated by ``lab/profiles.py``): ``win_extension`` (null, or
``{status, service, start_mode}``), ``place`` (``azure-vm`` | ``arc`` | ``none``),
``imds_identity`` (``system`` | ``none``), ``himds_running``, ``remnants`` (``agent`` |
``extension`` leftovers), ``worker_credential`` (null, or ``{account, tokens, folder}``
with ``direct`` | ``group`` | ``none`` each) and ``events`` (Microsoft-SMA exits).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from lab.winrm_emulator.ps_json import PsDate
from lab.winrm_emulator.ps_sections import (
    LEVEL,
    SMA_LOG,
    RunState,
    _block,
    _error,
    _json,
    _log_error,
    _proxy,
    answers,
)
from lab.winrm_emulator.tls_probe import Endpoint

HANDLER = "Microsoft.Azure.Automation.HybridWorker.HybridWorkerForWindows"
HANDLER_DIR = "C:\\Packages\\Plugins\\" + HANDLER
TOKENS_DIR = "C:\\ProgramData\\AzureConnectedMachineAgent\\Tokens"
DEFAULT_EXTENSION_VERSION = "1.1.13"
EXIT_TEXT = "Win32 Process Exited with code [2148734720]"
V1_KEY = "HKLM:\\SOFTWARE\\Microsoft\\HybridRunbookWorker"
V2_KEY = "HKLM:\\SOFTWARE\\Microsoft\\HybridRunbookWorkerV2"
AZURE_HW_KEY = "HKLM:\\SOFTWARE\\Microsoft\\Azure\\HybridWorker"
# FileSystemRights as 5.1 writes them: the flags plus Synchronize, as Windows stores them.
RIGHTS = {"Read": 0x120089, "ReadAndExecute": 0x1200A9, "FullControl": 0x1F01FF}
STATUS_MESSAGES = {
    "success": "Hybrid Worker extension enabled.",
    "transitioning": "Enable in progress.",
    "error": "Hybrid Worker extension failed to enable.",
    "warning": "Hybrid Worker extension enabled with warnings.",
}
_ARC_SERVICES = ("himds", "ExtensionService", "GCArcService")


def _ext(state: RunState) -> dict[str, Any] | None:
    value = state.profile.get("win_extension")
    return dict(value) if isinstance(value, dict) else None


def _place(state: RunState) -> str:
    return str(state.profile.get("place", "none"))


def _arc(state: RunState) -> bool:
    return _place(state) == "arc"


def account_url(state: RunState) -> str:
    """Return the extension's AutomationAccountURL: the lab host's account (the fleet names
    it in the emulator's config), else one made from the host name the same way."""
    if state.host.account_url:
        return state.host.account_url
    aid = uuid.uuid5(uuid.NAMESPACE_DNS, f"{state.host.name}.account.hrw-lab")
    return f"https://{aid}.jrds.eus.azure-automation.net/automationAccounts/{aid}"


@answers("arc", version=1)
def arc(state: RunState) -> list[str]:
    """Answer the arc block: the Connected Machine agent's services and its folder."""
    state.extra["arc"] = _arc(state)
    services = []
    if _arc(state):
        running = bool(state.profile.get("himds_running", True))
        for name in _ARC_SERVICES:
            up = running or name != "himds"
            services.append(
                {"Name": name, "State": "Running" if up else "Stopped", "StartMode": "Auto"}
            )
    body = [state.mark("PART", "services"), *_json(services), state.mark("PART", "folder")]
    body += _json({"Path": "C:\\ProgramData\\AzureConnectedMachineAgent", "Exists": _arc(state)})
    return _block("arc", state, body)


def _folder(ext: dict[str, Any]) -> str:
    return f"{HANDLER_DIR}\\{ext.get('version', DEFAULT_EXTENSION_VERSION)}"


def _status_file(ext: dict[str, Any], seq: int, now: PsDate) -> dict[str, Any]:
    """Return element 0 of ``Status\\<seq>.status`` as the script projects it."""
    status = str(ext.get("status", "success"))
    stamp = now.moment.strftime("%Y-%m-%dT%H:%M:%S")
    lines = f"[{stamp}] {STATUS_MESSAGES[status]}"
    if status == "transitioning":
        lines = f"[{stamp}] Installing Hybrid Worker\r\n[{stamp}] Waiting for registration"
    return {
        "File": f"{_folder(ext)}\\Status\\{seq}.status",
        "Status": status,
        "Code": 0 if status == "success" else 1,
        "Operation": "Enable",
        "ConfigurationAppliedTime": stamp + "Z",
        "Message": STATUS_MESSAGES[status],
        "Substatus": [{"Name": "HybridWorker", "Status": status, "Code": 0, "Message": lines}],
    }


@answers("extension", version=1)
def extension(state: RunState) -> list[str]:
    """Answer the extension block: handler versions, the public settings, the status file
    and the account endpoints (which join the network block's targets)."""
    ext = _ext(state)
    body = [state.mark("PART", "versions")]
    seq = int(ext.get("seq", 0)) if ext else 0
    public: dict[str, Any] | None = None
    if ext is not None:
        version = str(ext.get("version", DEFAULT_EXTENSION_VERSION))
        body += _json({"Name": version, "FullName": f"{HANDLER_DIR}\\{version}"})
        public = {"AutomationAccountURL": account_url(state)}
        if ext.get("proxy"):
            public["ProxySettings"] = {"ProxyServer": str(ext["proxy"]), "UserName": ""}
    body.append(state.mark("PART", "settings"))
    if ext is not None and public is not None:
        folder = f"{HANDLER_DIR}\\{ext.get('version', DEFAULT_EXTENSION_VERSION)}"
        proxy = public.get("ProxySettings") or {}
        body += _json(
            {
                "Seq": seq,
                "File": f"{folder}\\RuntimeSettings\\{seq}.settings",
                "AutomationAccountURL": public["AutomationAccountURL"],
                "ProxyServer": str(proxy.get("ProxyServer", "")),
                "ProxyUserName": str(proxy.get("UserName", "")),
            }
        )
    body.append(state.mark("PART", "status"))
    if ext is not None:
        body += _json(_status_file(ext, seq, PsDate(state.now)))
    body.append(state.mark("PART", "effective"))
    url, source = None, None
    if public is not None:
        url, source = public["AutomationAccountURL"], "settings"
    elif state.params.get("automation_account_url"):
        url, source = str(state.params["automation_account_url"]), "override"
    endpoints: dict[str, str | None] = {
        "ext-jrds": None,
        "ext-agentsvc": None,
        "arc-his": None,
        "arc-login": None,
    }
    if url:
        jrds = urlsplit(url).hostname or ""
        endpoints["ext-jrds"] = jrds
        if ".jrds." in jrds:
            endpoints["ext-agentsvc"] = jrds.replace(".jrds.", ".agentsvc.", 1)
        if state.extra.get("arc"):
            endpoints["arc-his"] = "gbl.his.arc.azure.com"
            endpoints["arc-login"] = "login.microsoftonline.com"
    shown = None
    proxy_text = str(((public or {}).get("ProxySettings") or {}).get("ProxyServer") or "")
    parsed = _proxy(proxy_text, "") if proxy_text else None
    if parsed is not None:
        shown = parsed[1]["Url"]
        if url and state.proxy is None and state.params.get("proxy") is None:
            state.proxy = parsed[0]
    known = {t.name for t in state.targets}
    for role, name in endpoints.items():
        if name and name not in known:
            state.targets.append(Endpoint(role, name, state.host.resolve.get(name)))
            known.add(name)
    effective = {
        "AccountUrl": url,
        "AccountUrlSource": source,
        "Arc": bool(state.extra.get("arc")),
        "Endpoints": endpoints,
        "Proxy": shown,
    }
    body += _json(effective)
    return _block("extension", state, body)


@answers("extservice", version=1)
def extservice(state: RunState) -> list[str]:
    """Answer the extservice block: HybridWorkerService from Win32_Service (nothing printed
    when the extension, and with it the service, is not installed)."""
    ext = _ext(state)
    found = []
    if ext is not None:
        found.append(
            {
                "Name": "HybridWorkerService",
                "State": str(ext.get("service", "Running")),
                "StartMode": str(ext.get("start_mode", "Auto")),
            }
        )
    return _block("ext_service", state, _json(found))


def _imds_answer(state: RunState) -> dict[str, Any]:
    """Return what the script prints of IMDS's answer: on an Azure VM the token response
    (read, checked for access_token, dropped), elsewhere a timeout."""
    answer: dict[str, Any] = {
        "Answered": False,
        "Status": None,
        "TokenPresent": False,
        "Challenge": None,
        "Error": None,
    }
    if _place(state) != "azure-vm":
        answer["Error"] = "The operation has timed out"
        return answer
    answer["Answered"] = True
    if state.profile.get("imds_identity", "system") == "system":
        answer["Status"] = 200
        answer["TokenPresent"] = bool(state.host.imds_token)  # what IMDS handed out, dropped
    else:
        answer["Status"] = 400
        answer["Error"] = "invalid_request: Identity not found"
    return answer


def _arc_answer(state: RunState) -> dict[str, Any]:
    """Return what the script prints of localhost:40342's answer on an Arc-enabled server."""
    if not state.profile.get("himds_running", True):
        return {
            "Answered": False,
            "Status": None,
            "TokenPresent": False,
            "Challenge": None,
            "Error": (
                "No connection could be made because the target machine actively refused it "
                "127.0.0.1:40342"
            ),
        }
    key = uuid.uuid5(uuid.NAMESPACE_DNS, f"{state.host.name}.himds.hrw-lab")
    return {
        "Answered": True,
        "Status": 401,
        "TokenPresent": False,
        "Challenge": f"Basic realm={TOKENS_DIR}\\{key}.key",
        "Error": None,
    }


@answers("identity", version=1)
def identity(state: RunState) -> list[str]:
    """Answer the identity block: IMDS always, the Arc endpoint on Arc-enabled servers."""
    body = [state.mark("PART", "imds"), *_json(_imds_answer(state)), state.mark("PART", "arc")]
    if state.extra.get("arc"):
        body += _json(_arc_answer(state))
    return _block("identity", state, body)


def _agent_installed(state: RunState) -> bool:
    return bool((state.profile.get("healthservice") or {}).get("exists", True))


@answers("remnants", version=1)
def remnants(state: RunState) -> list[str]:
    """Answer the remnants block: the three registry keys and the V2 registrations."""
    left = set(state.profile.get("remnants") or [])
    ext = _ext(state) is not None
    v1 = bool(state.workers) or "agent" in left
    v2 = ext or "extension" in left
    keys = [
        {"Path": V1_KEY, "Exists": v1},
        {"Path": V2_KEY, "Exists": v2},
        {"Path": AZURE_HW_KEY, "Exists": v2},
    ]
    body = [state.mark("PART", "keys"), *_json(keys), state.mark("PART", "v2")]
    if v2:
        aid = uuid.uuid5(uuid.NAMESPACE_DNS, f"{state.host.name}.account.hrw-lab")
        body += _json(
            {
                "Key": f"HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\HybridRunbookWorkerV2\\{aid}",
                "JobRuntimeDataServiceUri": account_url(state).split("/automationAccounts/")[0],
                "AzureResourceId": (
                    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/hrw-lab"
                    f"/providers/Microsoft.Compute/virtualMachines/{state.host.name}"
                ),
            }
        )
    return _block("remnants", state, body)


def _acl(account: str, grant: str, rights: str) -> list[dict[str, Any]]:
    """Return a folder's Access entries: Administrators and SYSTEM always, the account's
    own entry (``direct``), or only a group it belongs to (``group``), or nothing."""
    entries: list[dict[str, Any]] = [
        {
            "IdentityReference": {"Value": "BUILTIN\\Administrators"},
            "FileSystemRights": RIGHTS["FullControl"],
            "AccessControlType": 0,
            "IsInherited": False,
        },
        {
            "IdentityReference": {"Value": "NT AUTHORITY\\SYSTEM"},
            "FileSystemRights": RIGHTS["FullControl"],
            "AccessControlType": 0,
            "IsInherited": True,
        },
    ]
    if grant == "direct":
        entries.append(
            {
                "IdentityReference": {"Value": account},
                "FileSystemRights": RIGHTS[rights],
                "AccessControlType": 0,
                "IsInherited": False,
            }
        )
    elif grant == "group":
        entries.append(
            {
                "IdentityReference": {"Value": "HRWLAB\\Hybrid Worker Operators"},
                "FileSystemRights": RIGHTS[rights],
                "AccessControlType": 0,
                "IsInherited": False,
            }
        )
    return entries


@answers("arcacl", version=1)
def arcacl(state: RunState) -> list[str]:
    """Answer the arcacl block: the account the inventory named, the two folders' ACL
    entries on an Arc-enabled server, and the Microsoft-SMA exits with 2148734720."""
    account = str(state.params.get("worker_credential_account") or "")
    arc_on = bool(state.extra.get("arc"))
    body = [state.mark("PART", "account"), *_json({"Account": account, "Arc": arc_on})]
    grants = state.profile.get("worker_credential") or {}
    for path, key, rights in (
        (TOKENS_DIR, "tokens", "Read"),
        (HANDLER_DIR, "folder", "ReadAndExecute"),
    ):
        body.append(state.mark("PART", f"acl {path}"))
        if arc_on and account:
            body += _json(_acl(account, str(grants.get(key, "direct")), rights))
    body.append(state.mark("PART", "exits"))
    failure = _log_error(state, SMA_LOG)
    if failure is not None:
        body += _error(state, failure)
    else:
        start = state.now - timedelta(hours=float(state.params.get("lookback_hours", 24)))
        found = []
        for event in state.profile.get("events", []) or []:
            created = state.now - timedelta(minutes=float(event.get("minutes_ago", 0)))
            if event.get("log") != SMA_LOG or created < start:
                continue
            if EXIT_TEXT not in str(event.get("message") or ""):
                continue
            level = event.get("level", 4)
            found.append(
                {
                    "Id": int(event["id"]),
                    "ProviderName": str(event.get("provider", "")),
                    "Level": LEVEL.get(level, level) if isinstance(level, str) else int(level),
                    "TimeCreated": PsDate(created),
                    "Message": event.get("message"),
                }
            )
        found.sort(key=lambda e: e["TimeCreated"].moment, reverse=True)
        body += _json(found)  # Read-HrwEvents drops NoMatchingEventsFound: none prints nothing
    return _block("arc_acl", state, body)


# The blocks answered here (registered with ps_sections.ANSWERS by the decorator).
EXT_BLOCKS = ("arc", "extension", "extservice", "identity", "remnants", "arcacl")
