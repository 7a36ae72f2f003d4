"""The Linux probe's extension-based worker sections, parsed from what linux_facts.sh read.

Pure functions from the probe's blocks to the shapes of :mod:`hrw_preflight.facts.ext_schema`:
the guest agent's files for the HybridWorkerForLinux extension (``config/HandlerState``,
``mrseq``, ``config/<seq>.settings``, ``status/<seq>.status``), what systemd says of ``hwd``,
the processes of ``hweautomation``, the Arc agent, the identity endpoints' answers (status
and whether a token was present: the token itself never leaves the host) and the remnants.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from hrw_preflight.facts.ext_schema import (
    ARC_LINUX_DIR,
    LINUX_HANDLER,
    LINUX_SERVICE,
    LINUX_WORKER_USER,
    ArcFacts,
    EndpointAnswer,
    ExtensionFacts,
    ExtensionStatus,
    IdentityFacts,
    RemnantFacts,
    ServiceFacts,
    SubStatus,
    account_endpoints,
)
from hrw_preflight.facts.model import Section


class Block(Protocol):
    """A section of the facts probe's output (see probe.Block)."""

    @property
    def body(self) -> str: ...
    @property
    def rc(self) -> str: ...
    @property
    def raw(self) -> str: ...


HANDLER_STATES = ("NotInstalled", "Installed", "Enabled", "FailedUpgrade")
LOAD_STATES = ("loaded", "not-found", "masked", "error", "bad-setting", "stub", "merged")
HIMDS = re.compile(r"(?:^|/)himds(?:\s|$)")
_FILE_WORDS = {
    "denied": "permission denied",
    "symlink": "a symbolic link (never followed)",
    "notfile": "not a regular file",
    "key": "it holds a private key",
}


class Unreadable(Exception):
    """A part of the extension's facts could not be read; the section becomes an error."""


def key_values(text: str) -> dict[str, list[str]]:
    """Return the ``key=value`` lines of a probe block, every value of a repeated key kept."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def _one(values: Mapping[str, list[str]], key: str) -> str | None:
    found = values.get(key)
    return found[-1] if found else None


def _file(files: Mapping[str, Block], path: str) -> str | None:
    """Return the text of a file the probe read, None when it does not exist; raise
    Unreadable for one that exists but could not be read."""
    block = files.get(path)
    if block is None or block.rc == "missing":
        return None
    if block.rc != "0":
        raise Unreadable(f"{path}: {_FILE_WORDS.get(block.rc, f'read failed ({block.rc})')}")
    return block.body


def _status(path: str, seq: int, text: str) -> ExtensionStatus:
    """Return element 0 of a ``<seq>.status`` file (a JSON array), as the guest agent reads
    it; raise Unreadable for a file that is not that shape."""
    try:
        doc = json.loads(text)
        top = doc[0]["status"]
        message = (top.get("formattedMessage") or {}).get("message") or ""
        subs: list[SubStatus] = [
            {
                "name": str(sub.get("name") or ""),
                "status": str(sub.get("status") or ""),
                "code": int(sub["code"]) if sub.get("code") is not None else None,
                "message": str((sub.get("formattedMessage") or {}).get("message") or ""),
            }
            for sub in top.get("substatus") or []
        ]
        return {
            "seq": seq,
            "file": path,
            "status": str(top["status"]),
            "code": int(top["code"]) if top.get("code") is not None else None,
            "operation": str(top["operation"]) if top.get("operation") else None,
            "configuration_applied": top.get("configurationAppliedTime"),
            "message": str(message),
            "substatus": subs,
        }
    except (ValueError, LookupError, TypeError, AttributeError) as exc:
        raise Unreadable(f"{path} is not a guest agent status file ({exc})") from None


def _account_url(path: str, text: str) -> str | None:
    """Return ``publicSettings.AutomationAccountURL`` of a ``<seq>.settings`` file (only the
    public part is read; the protected part stays encrypted and is never kept)."""
    try:
        doc = json.loads(text)
        public = doc["runtimeSettings"][0]["handlerSettings"].get("publicSettings") or {}
    except (ValueError, LookupError, TypeError, AttributeError) as exc:
        raise Unreadable(f"{path} is not a guest agent settings file ({exc})") from None
    url = public.get("AutomationAccountURL") if isinstance(public, dict) else None
    return str(url) if url else None


def extension_section(
    scan: Block | None, files: Mapping[str, Block], account_override: str | None
) -> Section:
    """Return the ``extension`` section (:class:`ExtensionFacts`) from the ``ext_scan``
    block and the handler files the probe read."""
    if scan is None or scan.rc != "0":
        return Section.failed("extension", "the extension scan is missing from the probe output")
    values = key_values(scan.body)
    lines = [f"$ ls -d /var/lib/waagent/{LINUX_HANDLER}-*", scan.body.strip()]
    waagent = _one(values, "waagent")
    if waagent == "denied":
        return Section.failed(
            "extension",
            "/var/lib/waagent is not readable by the probe's login (run it with --sudo or as "
            "root): whether the extension is installed cannot be told",
            "\n".join(lines),
        )
    folder = _one(values, "newest")
    data: ExtensionFacts = {
        "installed": False,
        "handler": LINUX_HANDLER,
        "folder": folder,
        "version": folder.rsplit("-", 1)[-1] if folder else None,
        "handler_state_kept": True,
        "handler_state": None,
        "seq": None,
        "seq_source": None,
        "status": None,
        "automation_account_url": None,
        "account_url_source": None,
        "proxy": None,
        "endpoints": account_endpoints(None, False),
    }
    try:
        if folder:
            state = _file(files, f"{folder}/config/HandlerState")
            data["handler_state"] = state.strip() if state is not None else None
            data["installed"] = data["handler_state"] not in (None, "NotInstalled")
            seq_text, source = _one(values, "seq"), _one(values, "seq_source")
            if seq_text and seq_text.isdigit():
                seq = int(seq_text)
                data["seq"], data["seq_source"] = seq, source
                settings_path = f"{folder}/config/{seq}.settings"
                settings = _file(files, settings_path)
                if settings is not None:
                    data["automation_account_url"] = _account_url(settings_path, settings)
                    data["account_url_source"] = (
                        "settings" if data["automation_account_url"] else None
                    )
                status_path = f"{folder}/status/{seq}.status"
                status = _file(files, status_path)
                if status is not None:
                    data["status"] = _status(status_path, seq, status)
                    lines += [f"== {status_path}", status.strip()]
            lines.append(f"HandlerState: {data['handler_state']}")
    except Unreadable as exc:
        return Section.failed("extension", str(exc), "\n".join(lines))
    if not data["automation_account_url"] and account_override:
        data["automation_account_url"] = account_override
        data["account_url_source"] = "override"
    arc = _one(values, "azcmagent") == "dir"
    data["endpoints"] = account_endpoints(data["automation_account_url"], arc)
    lines.append(
        f"AutomationAccountURL ({data['account_url_source'] or 'none'}): "
        f"{data['automation_account_url']}"
    )
    return Section("extension", dict(data), raw="\n".join(lines))


def service_section(
    hwd: Block | None, user: Block | None, processes: list[dict[str, Any]]
) -> Section:
    """Return the ``ext_service`` section (:class:`ServiceFacts`): what systemd says of hwd
    (``systemctl show -p LoadState``, ``is-active``, ``is-enabled``) and the processes of
    the worker user."""
    if hwd is None or user is None:
        return Section.failed("ext_service", "the hwd block is missing from the probe output")
    raw = (
        f"$ systemctl show -p LoadState --value hwd; systemctl is-active hwd; "
        f"systemctl is-enabled hwd\n{hwd.raw}\n$ getent passwd {LINUX_WORKER_USER}\n{user.raw}"
    )
    values = key_values(hwd.body)
    if _one(values, "systemctl") == "missing":
        return Section.failed("ext_service", "systemctl is not installed: hwd cannot be asked", raw)
    load, active, enabled = (_one(values, k) or "" for k in ("load", "active", "enabled"))
    if load not in LOAD_STATES:
        return Section.failed("ext_service", f"systemd did not answer: {load or active}", raw)
    uid: int | None = None
    if user.rc == "0":
        entry = user.body.strip().split(":")
        if len(entry) < 3 or not entry[2].isdigit():
            return Section.failed("ext_service", "unexpected getent output", raw)
        uid = int(entry[2])
    elif user.rc != "2":
        return Section.failed("ext_service", f"getent passwd failed (status {user.rc})", raw)
    owned = [p for p in processes if uid is not None and int(p["uid"]) == uid]
    data: ServiceFacts = {
        "name": LINUX_SERVICE,
        "exists": load != "not-found",
        "state": active,
        "start": enabled,
        "worker_user": LINUX_WORKER_USER,
        "worker_uid": uid,
        "processes": [
            {
                "pid": int(p["pid"]),
                "uid": int(p["uid"]),
                "user": str(p["user"]),
                "args": str(p["args"]),
            }
            for p in owned
        ],
    }
    return Section("ext_service", dict(data), raw=raw)


def arc_section(scan: Block | None, processes: list[dict[str, Any]] | None) -> Section:
    """Return the ``arc`` section (:class:`ArcFacts`): ``/opt/azcmagent`` and whether a
    ``himds`` process runs."""
    if scan is None or scan.rc != "0":
        return Section.failed("arc", "the extension scan is missing from the probe output")
    installed = _one(key_values(scan.body), "azcmagent") == "dir"
    raw = f"{ARC_LINUX_DIR}: {'present' if installed else 'absent'}"
    if not installed:
        data: ArcFacts = {"installed": False, "markers": [], "himds_running": None, "himds": "-"}
        return Section("arc", dict(data), raw=raw)
    if processes is None:
        return Section.failed("arc", "the process table could not be read", raw)
    found = [p for p in processes if HIMDS.search(str(p["args"]))]
    shown = f"pid {found[0]['pid']}: {found[0]['args']}" if found else "no himds process"
    data = {
        "installed": True,
        "markers": [ARC_LINUX_DIR],
        "himds_running": bool(found),
        "himds": "running (" + shown + ")" if found else "not running",
    }
    return Section("arc", dict(data), raw=f"{raw}\nhimds: {shown}")


def answer(block: Block | None, what: str) -> EndpointAnswer:
    """Return what an identity endpoint answered, from the probe's summary lines
    (``status=``, ``token=``, ``challenge=``, ``error=``, ``curl:``); raise Unreadable when
    the endpoint could not be asked at all (no curl)."""
    if block is None:
        raise Unreadable(f"the {what} block is missing from the probe output")
    if block.body.strip() == "nocurl":
        raise Unreadable(f"curl is not installed, so {what} cannot be asked")
    values = key_values(block.body)
    status = _one(values, "status") or ""
    failures = [ln.strip() for ln in block.body.splitlines() if ln.startswith("curl:")]
    return {
        "answered": status.isdigit(),
        "status": int(status) if status.isdigit() else None,
        "token_present": _one(values, "token") == "1",
        "challenge": _one(values, "challenge") or None,
        "error": _one(values, "error") or ("; ".join(failures)[:300] or None),
    }


def identity_section(imds: Block | None, arc: Block | None, arc_installed: bool) -> Section:
    """Return the ``identity`` section (:class:`IdentityFacts`)."""
    raw = "\n".join(
        f"$ {name}\n{b.raw}"
        for name, b in (("IMDS token request", imds), ("Arc identity", arc))
        if b
    )
    try:
        data: IdentityFacts = {
            "imds": answer(imds, "IMDS (169.254.169.254)"),
            "arc": answer(arc, "the Arc identity endpoint (localhost:40342)")
            if arc_installed
            else None,
        }
    except Unreadable as exc:
        return Section.failed("identity", str(exc), raw)
    return Section("identity", dict(data), raw=raw)


def remnants_section(scan: Block | None) -> Section:
    """Return the ``remnants`` section (:class:`RemnantFacts`) from the scan's
    ``remnant_agent=`` and ``remnant_extension=`` lines."""
    if scan is None or scan.rc != "0":
        return Section.failed("remnants", "the extension scan is missing from the probe output")
    values = key_values(scan.body)
    data: RemnantFacts = {
        "agent": values.get("remnant_agent", []),
        "extension": values.get("remnant_extension", []),
    }
    raw = "\n".join(
        f"{kind} remnants: {', '.join(found) or 'none'}"
        for kind, found in (("agent", data["agent"]), ("extension", data["extension"]))
    )
    return Section("remnants", dict(data), raw=raw)


def extension_sections(
    files: Mapping[str, Block],
    blocks: Mapping[str, Block],
    processes: list[dict[str, Any]] | None,
    account_override: str | None,
) -> list[Section]:
    """Return the Linux probe's extension-based worker sections (all but ``kind``)."""
    scan = blocks.get("ext_scan")
    arc = arc_section(scan, processes)
    arc_installed = bool(arc.data and arc.data["installed"])
    builders: list[Callable[[], Section]] = [
        lambda: extension_section(scan, files, account_override),
        lambda: (
            service_section(blocks.get("hwd"), blocks.get("hwe_user"), processes or [])
            if processes is not None
            else Section.failed("ext_service", "the process table could not be read")
        ),
        lambda: arc,
        lambda: identity_section(blocks.get("imds"), blocks.get("arc_identity"), arc_installed),
        lambda: remnants_section(scan),
    ]
    return [build() for build in builders]
