"""Verdicts shared by Linux and Windows workers: connectivity, TLS chain, hardware, pressure."""

from __future__ import annotations

import re

from hrw_preflight.facts.ext_schema import EXTENSION_ROLES
from hrw_preflight.facts.kind import describe
from hrw_preflight.facts.model import HostFacts
from hrw_preflight.facts.schema import EndpointResult, ProcessData
from hrw_preflight.verdicts.applies import not_probed, not_probed_skip
from hrw_preflight.verdicts.base import (
    Settings,
    Unreadable,
    Verdict,
    errored,
    failed,
    need,
    passed,
    skipped,
)
from hrw_preflight.verdicts.certs import ChainUnreadable, judge_chain
from hrw_preflight.verdicts.registry import check

GIB = 1024**3
# A machine sold as "4 GB" reports a little less to the OS (firmware and kernel reservations).
MEMORY_ALLOWANCE = 0.9


def _extension_endpoint(facts: HostFacts, role: str, scenario: str) -> str | Verdict:
    """Return the extension-based worker's endpoint host for ``role``, or the verdict that
    ends the check: a skip on a host without the extension (and no account given with
    --hrw-automation-account-url), or for an Arc endpoint on a host that is not on Arc."""
    kind = need(facts, "kind")
    missing = not_probed(kind, "extension")
    if missing:
        return not_probed_skip(facts, missing, scenario)
    ext = need(facts, "extension")
    if not ext["installed"] and not ext["automation_account_url"]:
        return skipped(
            "no extension-based worker on this host and no --hrw-automation-account-url, so "
            "no extension endpoint to reach",
            "kind",
            "extension",
        )
    if role.startswith("arc-"):
        if kind["place"] is None:
            raise Unreadable(f"whether the host is on Arc: {kind['unknown'].get('place')}")
        if kind["place"] != "arc":
            return skipped(
                f"not an Arc-enabled server ({describe(kind)}): the worker's identity does not "
                "depend on the Arc endpoints",
                "kind",
            )
    host = ext["endpoints"].get(role)
    if not host:
        raise Unreadable(
            "the extension's AutomationAccountURL could not be read from its public settings"
        )
    return str(host)


def _endpoint(
    facts: HostFacts, role: str, scenario: str = "HRW-G01"
) -> tuple[str, EndpointResult] | Verdict:
    """Return (endpoint host, its network probe result), or the verdict that ends the check."""
    if role in EXTENSION_ROLES:
        found = _extension_endpoint(facts, role, scenario)
        if isinstance(found, Verdict):
            return found
        return found, _network_result(facts, found)
    kind = facts.section("kind").data
    section = facts.section("worker")
    if kind is not None and kind.get("agent") is False and section.data is None:
        # Windows without the MMA: its configuration (and any workspace) cannot be loaded.
        return skipped(
            f"no agent-based worker on this host ({describe(kind)}), so no agent endpoint to "
            f"reach (its configuration could not be read: {section.error})",
            "kind",
            "worker",
        )
    worker = need(facts, "worker")
    if kind is not None and kind.get("agent") is False and not worker.get("workspace_id"):
        return skipped(
            "no agent-based worker on this host and no --hrw-workspace-id, so no agent "
            f"endpoint to reach ({describe(kind)})",
            "kind",
            "worker",
        )
    host = worker["endpoints"].get(role)
    if host is not None and not isinstance(host, str):
        raise Unreadable(f"the {role} endpoint is not a host name")
    registered = bool(worker["update_management"]) or bool(worker["user_worker"])
    if role == "jrds" and not registered:
        return skipped(
            "no hybrid worker is registered on this host (oms.conf names no worker.conf), "
            "so it has no JRDS endpoint to reach",
            "worker",
        )
    if not host:
        if not worker.get("workspace_id"):
            raise Unreadable("the workspace id could not be discovered on the host")
        raise Unreadable(f"the {role} endpoint could not be discovered on the host")
    result = _network_result(facts, host)
    if worker.get("proxy_error") and not result.get("via_proxy"):
        # Probed directly only because the agent's proxy could not be read: whatever came
        # of it says nothing about the route the agent takes.
        raise Unreadable(
            f"the agent's proxy setting could not be read ({worker['proxy_error']}), so "
            f"{host} was probed directly, which may not be the agent's route; give the "
            'proxy in hrw_proxy (or "" for none)'
        )
    return host, result


def _network_result(facts: HostFacts, host: str) -> EndpointResult:
    """Return the network probe's result for ``host``; raise Unreadable when it has none."""
    network = need(facts, "network")
    result = network.get(host)
    if not isinstance(result, dict):
        raise Unreadable(f"the network probe returned nothing for {host}")
    return result


def _route(result: EndpointResult) -> str:
    proxy = result.get("via_proxy")
    return f" through proxy {proxy}" if proxy else " directly"


@check("HRW-G01")
def outbound_443(facts: HostFacts, item: str, settings: Settings) -> Verdict:
    """HRW-G01: return whether TCP 443 connects and a TLS handshake completes to the endpoint."""
    found = _endpoint(facts, item)
    if isinstance(found, Verdict):
        return found
    host, result = found
    src = "extension" if item in EXTENSION_ROLES else "worker"
    expected = f"TCP 443 to {host}{_route(result)} connects and a TLS handshake completes"
    tcp, tls = result["tcp"], result["tls"]
    detail = result.get("detail") or ""
    if tcp == "error":
        raise Unreadable(f"the connectivity probe for {host} failed: {detail}")
    if tcp != "ok":
        return failed(
            f"TCP 443 to {host}{_route(result)}: {tcp} ({detail})", expected, src, "network"
        )
    if tls != "ok":
        return failed(
            f"TCP 443 to {host} connected{_route(result)} but the TLS handshake {tls} ({detail})",
            expected,
            src,
            "network",
        )
    return passed(
        f"connected to {host}:443{_route(result)} and completed a TLS handshake",
        expected,
        src,
        "network",
    )


@check("HRW-G04")
def azure_ca_chain(facts: HostFacts, item: str, settings: Settings) -> Verdict:
    """HRW-G04: return whether the chain the host receives is anchored in an Azure CA."""
    found = _endpoint(facts, item, "HRW-G04")
    if isinstance(found, Verdict):
        return found
    host, result = found
    src = "extension" if item in EXTENSION_ROLES else "worker"
    expected = (
        f"the chain received for {host}{_route(result)} is issued by a CA on the "
        "Azure CA list (matched by thumbprint, signatures verified)"
    )
    chain = result.get("chain_pem") or []
    if result["tcp"] == "error":
        raise Unreadable(f"the TLS probe for {host} failed: {result.get('detail')}")
    if not chain:
        return failed(
            f"no certificate chain received from {host}{_route(result)}: TCP "
            f"{result['tcp']}, TLS {result['tls']} (see HRW-G01)",
            expected,
            src,
            "network",
        )
    try:
        judgement = judge_chain(list(chain), settings.trusted, host)
    except ChainUnreadable as exc:
        return errored(f"the chain received from {host} could not be parsed: {exc}", "network")
    subjects = " <- ".join(judgement.subjects)
    if result.get("chain_source") == "built":
        subjects += " (as built by the host: it reported only the leaf as sent)"
    if judgement.ok:
        return passed(
            f"chain [{subjects}] anchored at {judgement.anchor}", expected, src, "network"
        )
    return failed(
        f"chain [{subjects}]{_route(result)}: {judgement.reason}", expected, src, "network"
    )


@check("HRW-G02")
def hardware_minimum(facts: HostFacts, item: str, settings: Settings) -> Verdict:
    """HRW-G02: return whether logical processors or memory meet the configured minimum."""
    hardware = need(facts, "hardware")
    if item == "cpu":
        count = int(hardware["logical_processors"])
        expected = f"at least {settings.min_logical_processors} logical processors"
        seen = f"{count} logical processor(s)"
        ok = count >= settings.min_logical_processors
    else:
        memory = int(hardware["memory_bytes"])
        expected = (
            f"at least {settings.min_memory_gb:g} GB of RAM "
            f"({int(MEMORY_ALLOWANCE * 100)}% of it is accepted as visible memory)"
        )
        seen = f"{memory / GIB:.2f} GiB of RAM"
        ok = memory >= settings.min_memory_gb * GIB * MEMORY_ALLOWANCE
    return (passed if ok else failed)(seen, expected, "hardware")


@check("HRW-G03")
def resource_pressure(facts: HostFacts, item: str, settings: Settings) -> Verdict:
    """HRW-G03: return whether the host is under CPU or memory pressure at probe time."""
    pressure = need(facts, "pressure")
    if item == "cpu":
        load = float(pressure["cpu_load"])
        expected = f"CPU load per logical processor below {settings.max_cpu_load:g}"
        if "cpu_window_s" in pressure:  # Windows: processor busy time sampled by the probe
            seen = (
                f"all processors busy {load:.2f} of the time over "
                f"{float(pressure['cpu_window_s']):g} s (_Total processor time)"
            )
        else:  # Linux: the kernel's 1-minute load average
            seen = f"1-minute load average per logical processor {load:.2f}"
        ok = load < settings.max_cpu_load
    else:
        available = int(pressure["memory_available_bytes"])
        total = int(pressure["memory_total_bytes"])
        if total <= 0:
            raise ValueError("total memory reported as zero")
        pct = 100.0 * available / total
        expected = f"at least {settings.min_memory_available_pct:g}% of memory available"
        seen = f"{pct:.1f}% of memory available ({available / GIB:.2f} of {total / GIB:.2f} GiB)"
        ok = pct >= settings.min_memory_available_pct
    return (passed if ok else failed)(seen, expected, "pressure")


_RWORKSPACE = re.compile(r"(?:^|\s)rworkspace:(\S+)")


def _stray_workers(facts: HostFacts, own: str | None) -> list[ProcessData]:
    """Return the nxautomation processes that run for a workspace other than ``own`` (or, with
    no known workspace, all of them when they name more than one), as Test_Marshall treats
    them."""
    table = need(facts, "processes")
    uid = table["users"].get("nxautomation")
    runs = [
        (p, m[1].lower())
        for p in table["processes"]
        if (p["user"] == "nxautomation" or (uid is not None and int(p["uid"]) == int(uid)))
        and (m := _RWORKSPACE.search(str(p["args"])))
    ]
    if own:
        return [p for p, ws in runs if ws != own.lower()]
    return [p for p, _ in runs] if len({ws for _, ws in runs}) > 1 else []


@check("HRW-G05")
def one_workspace(facts: HostFacts, item: str, settings: Settings) -> Verdict:
    """HRW-G05: return whether the agent reports to at most one workspace (Microsoft's
    MultiHomingCheck); on Linux also that no nxautomation process runs for another one."""
    worker = need(facts, "worker")
    workspaces = worker.get("workspaces")
    if workspaces is None:
        raise Unreadable("the agent's workspaces could not be listed")
    own = worker.get("workspace_id") or (workspaces[0] if len(workspaces) == 1 else None)
    linux = facts.platform == "linux"
    where = (
        "workspace folder(s) under /var/opt/microsoft/omsagent"
        if linux
        else "cloud workspace(s) in the Microsoft Monitoring Agent"
    )
    expected = "at most one " + where.replace("(s)", "")
    sections: tuple[str, ...] = ("worker",)
    problems = []
    if len(workspaces) > 1:
        problems.append(f"{len(workspaces)} {where}: {', '.join(workspaces)}")
    if linux:
        expected += ", and no nxautomation process for another workspace"
        sections = ("worker", "processes")
        strays = _stray_workers(facts, own)
        if strays:
            problems.append(
                "nxautomation process(es) for another workspace: "
                + "; ".join(f"pid {p['pid']}: {p['args']}" for p in strays)
            )
    if problems:
        return failed("; ".join(problems), expected, *sections)
    seen = f"1 {where}: {workspaces[0]}" if workspaces else f"no {where} (agent not onboarded)"
    return passed(seen, expected, *sections)
