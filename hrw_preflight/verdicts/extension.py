"""Verdicts for the extension-based (V2) worker: the extension, its service, the identity it
authenticates with, migration remnants, and the Arc grants of a custom credential."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from hrw_preflight.facts.ext_schema import (
    LINUX_WORKER_USER,
    NO_IDENTITY_ENDPOINT,
)
from hrw_preflight.facts.kind import describe
from hrw_preflight.facts.model import HostFacts
from hrw_preflight.verdicts.applies import not_probed, not_probed_skip
from hrw_preflight.verdicts.base import (
    Settings,
    Unreadable,
    Verdict,
    failed,
    need,
    passed,
    skipped,
)
from hrw_preflight.verdicts.registry import check

STUCK = (
    "the article's 'installation or uninstallation is stuck' scenario: the extension has "
    "stayed in transitioning"
)
EXIT_2148734720 = "Win32 Process Exited with code [2148734720]"


def _status_text(status: Mapping[str, Any]) -> str:
    """Return a status file's element 0 as one text: status, code, operation, message and
    each substatus, as evidence for the failure message."""
    parts = [
        f"{status['file']}: status {status['status']!r} (code {status['code']}, operation "
        f"{status['operation']!r}, applied {status['configuration_applied']})"
    ]
    if status["message"]:
        parts.append(f"message: {' '.join(str(status['message']).split())}")
    for sub in status["substatus"]:
        text = " ".join(str(sub["message"]).split())
        parts.append(f"substatus {sub['name']!r}: {sub['status']} (code {sub['code']}) {text}")
    return "; ".join(parts)


@check("HRW-X01")
def extension_healthy(facts: HostFacts, item: str, settings: Settings) -> Verdict:
    """HRW-X01: return whether the hybrid worker extension's handler state is Enabled
    (``handler-state``) or its newest status is success (``status``), from the guest agent's
    own files."""
    ext = need(facts, "extension")
    if not ext["installed"]:
        return failed(f"no {ext['handler']} folder", "the extension installed", "extension")
    where = f"{ext['handler']} {ext['version']} in {ext['folder']}"
    if item == "handler-state":
        if not ext["handler_state_kept"]:
            return skipped(
                f"the {facts.platform} guest agent keeps no HandlerState file; the status file "
                "is judged by item 'status'",
                "extension",
            )
        expected = f"{where}: config/HandlerState Enabled"
        state = ext["handler_state"]
        if state is None:
            return failed(
                "no config/HandlerState file: the guest agent has not installed the handler",
                expected,
                "extension",
            )
        seen = f"HandlerState {state}"
        return (passed if state == "Enabled" else failed)(seen, expected, "extension")
    expected = f"{where}: the newest status ({ext['seq_source'] or 'sequence'} number) success"
    if ext["seq"] is None:
        return failed(
            "no settings or mrseq: the guest agent has not handed the extension any settings",
            expected,
            "extension",
        )
    status = ext["status"]
    if status is None:
        return failed(
            f"no status file for sequence number {ext['seq']}: the extension has not reported",
            expected,
            "extension",
        )
    text = _status_text(status)
    if status["status"] == "success":
        return passed(text, expected, "extension")
    if status["status"] == "transitioning":
        return failed(f"{STUCK}; {text}", expected, "extension")
    return failed(text, expected, "extension")


@check("HRW-X02")
def worker_service(facts: HostFacts, item: str, settings: Settings) -> Verdict:
    """HRW-X02: return whether the worker service runs (``running``), starts at boot
    (``start``), and on Linux has processes owned by hweautomation (``worker-user``)."""
    svc = need(facts, "ext_service")
    linux = facts.platform == "linux"
    name = svc["name"]
    if item == "worker-user":
        if not linux:
            return skipped(
                f"{name} runs as the system account on Windows; there is no worker user to check",
                "ext_service",
            )
        user = svc["worker_user"] or LINUX_WORKER_USER
        expected = f"processes of {name} running as {user}"
        if svc["worker_uid"] is None:
            return failed(f"user {user} does not exist", expected, "ext_service")
        owned = [p for p in svc["processes"] if int(p["uid"]) == int(svc["worker_uid"])]
        if not owned:
            return failed(f"no process runs as {user}", expected, "ext_service")
        shown = "; ".join(f"pid {p['pid']}: {p['args']}" for p in owned[:5])
        return passed(f"{len(owned)} process(es) as {user}: {shown}", expected, "ext_service")
    if not svc["exists"]:
        what = f"systemd knows no {name} unit" if linux else f"service {name} is not installed"
        return failed(what, f"service {name} installed", "ext_service")
    if item == "running":
        want = "active" if linux else "Running"
        expected = f"systemctl is-active {name}: active" if linux else f"{name} State Running"
        seen = (
            f"systemctl is-active {name}: {svc['state']}"
            if linux
            else f"{name} State {svc['state']}"
        )
        return (passed if svc["state"] == want else failed)(seen, expected, "ext_service")
    want = "enabled" if linux else "Auto"
    expected = f"systemctl is-enabled {name}: enabled" if linux else f"{name} StartMode Auto"
    seen = f"systemctl is-enabled {name}: {svc['start']}" if linux else f"StartMode {svc['start']}"
    return (passed if svc["start"] == want else failed)(seen, expected, "ext_service")


def _answer(answer: Mapping[str, Any]) -> str:
    if not answer["answered"]:
        return f"no answer ({answer['error'] or 'nothing came back'})"
    text = f"HTTP {answer['status']}"
    if answer["token_present"]:
        text += ", a token came back (discarded on the host)"
    if answer["challenge"]:
        text += f", Www-Authenticate: {answer['challenge']}"
    if answer["error"]:
        text += f", error: {answer['error']}"
    return text


@check("HRW-X03")
def managed_identity(facts: HostFacts, item: str, settings: Settings) -> Verdict:
    """HRW-X03: return whether the managed identity the worker authenticates with answers:
    IMDS's token request on an Azure VM, himds and its challenge on an Arc-enabled server."""
    kind = need(facts, "kind")
    identity = need(facts, "identity")
    place = kind["place"]
    if place is None:
        raise Unreadable(f"where the host runs could not be told: {kind['unknown'].get('place')}")
    if place == "arc":
        arc = need(facts, "arc")
        expected = (
            "himds running and http://localhost:40342 answering an unauthenticated token "
            "request with 401 and Www-Authenticate: Basic realm=<key file>"
        )
        if not arc["himds_running"]:
            return failed(
                f"Arc-enabled server, but himds is not running ({arc['himds']})",
                expected,
                "kind",
                "arc",
                "identity",
            )
        answer = identity["arc"]
        if answer is None:
            raise Unreadable("the Arc identity endpoint was not asked")
        seen = f"localhost:40342: {_answer(answer)}"
        challenge = str(answer["challenge"] or "")
        ok = answer["status"] == 401 and challenge.lower().startswith("basic realm=")
        return (passed if ok else failed)(seen, expected, "kind", "arc", "identity")
    imds = identity["imds"]
    seen = f"IMDS 169.254.169.254:80 (no proxy): {_answer(imds)}"
    if place == "azure-vm":
        expected = "IMDS answering the system-assigned identity's token request with 200"
        if imds["status"] == 200 and imds["token_present"]:
            return passed(seen, expected, "kind", "identity")
        hint = (
            " (no system-assigned identity: with only a user-assigned one the extension "
            "fails with 'Invalid Authorization Token')"
            if imds["status"] == 400
            else ""
        )
        return failed(seen + hint, expected, "kind", "identity")
    return failed(
        f"neither an Azure VM nor Arc-enabled ({describe(kind)}); {seen}: the extension "
        f"reports '{NO_IDENTITY_ENDPOINT}'",
        "an Azure VM whose IMDS answers, or an Arc-enabled server",
        "kind",
        "identity",
    )


@check("HRW-X04")
def migration_remnants(facts: HostFacts, item: str, settings: Settings) -> Verdict:
    """HRW-X04: return whether leftovers of the kind ``item`` names (agent-based or
    extension) are absent from a host where that kind is not installed."""
    kind = need(facts, "kind")
    missing = not_probed(kind, "remnants")
    if missing:
        return not_probed_skip(facts, missing, "HRW-X04")
    remnants = need(facts, "remnants")
    which: Literal["agent", "extension"] = "agent" if item == "agent-remnants" else "extension"
    words = "agent-based worker" if which == "agent" else "hybrid worker extension"
    present = kind[which]
    if present is None:
        raise Unreadable(f"whether the {words} is installed: {kind['unknown'].get(which)}")
    if present:
        return skipped(f"the {words} is installed, so its files are in use, not remnants", "kind")
    found = list(remnants[which])
    expected = f"no {words} files left on a host without the {words}"
    if found:
        return failed(
            f"the {words} is not installed but its files remain: {', '.join(found)}",
            expected,
            "kind",
            "remnants",
        )
    return passed(f"no {words} remnants", expected, "kind", "remnants")


@check("HRW-X05")
def arc_custom_credential(facts: HostFacts, item: str, settings: Settings) -> Verdict:
    """HRW-X05: return whether a custom worker credential on an Arc-enabled server holds
    the grants the article names (``tokens-read``, ``extension-read-execute``) and no job
    was suspended with exit code 2148734720 (``exit-2148734720``)."""
    kind = need(facts, "kind")
    if kind["place"] is None:
        raise Unreadable(f"where the host runs could not be told: {kind['unknown'].get('place')}")
    if kind["place"] != "arc":
        return skipped(f"not an Arc-enabled server ({describe(kind)})", "kind")
    missing = not_probed(kind, "arc_acl")
    if missing:
        return not_probed_skip(facts, missing, "HRW-X05")
    acl = need(facts, "arc_acl")
    if item == "exit-2148734720":
        events = list(acl["exit_2148734720"])
        expected = (
            f"no '{EXIT_2148734720}' in Microsoft-SMA within {settings.lookback_hours:g} hours"
        )
        if events:
            first = events[0]
            return failed(
                f"{len(events)} event(s), first at {first.get('time')}: {first.get('message')}",
                expected,
                "arc_acl",
            )
        return passed("no such event", expected, "arc_acl")
    account = acl["account"]
    if not account:
        return skipped(
            "no custom Hybrid Worker credential named (the host keeps no published record of "
            "it: set hrw_worker_credential_account to check its grants), so jobs are taken to "
            "run as the system account",
            "arc_acl",
        )
    grant = acl["tokens"] if item == "tokens-read" else acl["extension_folder"]
    right = "Read" if item == "tokens-read" else "Read & Execute"
    if grant is None:
        raise Unreadable(f"the {right} grant for {account} was not read")
    expected = f"{account} granted {right} on {grant['path']} directly (not only via a group)"
    if grant["granted_directly"]:
        return passed(f"{account} holds {right} on {grant['path']} directly", expected, "arc_acl")
    return failed(
        f"{account} has no {right} entry of its own on {grant['path']}", expected, "arc_acl"
    )
