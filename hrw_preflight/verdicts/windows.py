"""Verdicts for Windows agent-based workers: HealthService and the agent's event logs."""

from __future__ import annotations

from typing import Any

from hrw_preflight.facts.model import HostFacts
from hrw_preflight.verdicts.base import Settings, Unreadable, Verdict, failed, need, passed
from hrw_preflight.verdicts.registry import check

OPS_MANAGER = "Operations Manager"
SMA = "Microsoft-SMA/Operational"
HYBRID_AGENT = "Microsoft.EnterpriseManagement.HealthService.AzureAutomation.HybridAgent"
EXIT_4294967295 = "Win32 Process Exited with code [4294967295]"
STATUS = {
    1: "Stopped",
    2: "StartPending",
    3: "StopPending",
    4: "Running",
    5: "ContinuePending",
    6: "PausePending",
    7: "Paused",
}
START_TYPE = {0: "Boot", 1: "System", 2: "Automatic", 3: "Manual", 4: "Disabled"}
LOGS = {"om": OPS_MANAGER, "sma": SMA}


@check("HRW-W01")
def healthservice(facts: HostFacts, item: str, settings: Settings) -> Verdict:
    """HRW-W01: return whether HealthService exists, is Running and starts Automatic."""
    service = need(facts, "service")
    expected = "service HealthService present, Status Running (4), StartType Automatic (2)"
    if not service["exists"]:
        return failed("service HealthService is not installed", expected, "service")
    status, start = int(service["status"]), int(service["start_type"])
    seen = (
        f"HealthService Status {STATUS.get(status, '?')} ({status}), StartType "
        f"{START_TYPE.get(start, '?')} ({start})"
    )
    return (passed if status == 4 and start == 2 else failed)(seen, expected, "service")


def _log(facts: HostFacts, name: str) -> list[dict[str, Any]]:
    logs = need(facts, "events")["logs"]
    if name not in logs:
        raise Unreadable(f"the {name!r} event log was not read")
    return list(logs[name])


def _summary(events: list[dict[str, Any]]) -> str:
    newest = max(events, key=lambda e: str(e["time"]))
    message = " ".join(str(newest["message"]).split())[:300]
    return f"{len(events)} event(s), newest at {newest['time']} (id {newest['id']}): {message}"


def _verdict(events: list[dict[str, Any]], what: str, settings: Settings) -> Verdict:
    expected = f"no {what} in the last {settings.lookback_hours:g} h"
    if events:
        return failed(_summary(events), expected, "events")
    return passed(f"no {what} in the last {settings.lookback_hours:g} h", expected, "events")


@check("HRW-W02")
def event_4502(facts: HostFacts, item: str, settings: Settings) -> Verdict:
    """HRW-W02: return whether Operations Manager holds event 4502 naming the hybrid agent."""
    found = [
        e
        for e in _log(facts, OPS_MANAGER)
        if int(e["id"]) == 4502 and HYBRID_AGENT in str(e["message"])
    ]
    return _verdict(found, f"event 4502 naming {HYBRID_AGENT} in '{OPS_MANAGER}'", settings)


@check("HRW-W03")
def sma_exit_code(facts: HostFacts, item: str, settings: Settings) -> Verdict:
    """HRW-W03: return whether Microsoft-SMA logged 'Win32 Process Exited with code
    [4294967295]'."""
    found = [e for e in _log(facts, SMA) if EXIT_4294967295 in str(e["message"])]
    return _verdict(found, f"'{EXIT_4294967295}' in '{SMA}'", settings)


@check("HRW-W04")
def connectivity_events(facts: HostFacts, item: str, settings: Settings) -> Verdict:
    """HRW-W04: return whether the event named by ``item`` (e.g. om-2138) was logged."""
    prefix, _, number = item.partition("-")
    log = LOGS[prefix]
    found = [e for e in _log(facts, log) if int(e["id"]) == int(number)]
    return _verdict(found, f"event {number} in '{log}'", settings)
