"""Verdicts for Windows agent-based workers: HealthService and the agent's event logs."""

from __future__ import annotations

from hrw_preflight.facts.model import HostFacts
from hrw_preflight.facts.schema import EventData
from hrw_preflight.verdicts.base import Settings, Unreadable, Verdict, failed, need, passed
from hrw_preflight.verdicts.registry import check

OPS_MANAGER = "Operations Manager"
SMA = "Microsoft-SMA/Operational"
HYBRID_AGENT = "Microsoft.EnterpriseManagement.HealthService.AzureAutomation.HybridAgent"
EXIT_4294967295 = "Win32 Process Exited with code [4294967295]"
LOGS = {"om": OPS_MANAGER, "sma": SMA}


@check("HRW-W01")
def healthservice(facts: HostFacts, item: str, settings: Settings) -> Verdict:
    """HRW-W01: return whether HealthService exists, is Running and starts Auto.

    Judged on Win32_Service's State and StartMode, which every .NET the worker may run on
    can read (ServiceController.StartType needs .NET 4.6.1).
    """
    service = need(facts, "service")
    expected = "service HealthService present, State Running, StartMode Auto"
    if not service["exists"]:
        return failed("service HealthService is not installed", expected, "service")
    state, mode = str(service["state"]), str(service["start_mode"])
    seen = f"HealthService State {state}, StartMode {mode}"
    return (passed if state == "Running" and mode == "Auto" else failed)(seen, expected, "service")


def _log(facts: HostFacts, name: str) -> list[EventData]:
    """Return the events read from log ``name``; Unreadable when it is missing or unreadable."""
    events = need(facts, "events")
    missing = events.get("missing_logs") or {}
    if name in missing:
        raise Unreadable(
            f"{missing[name]}: the agent or the hybrid worker that writes it is not "
            "installed, so this cannot be checked"
        )
    unreadable = events.get("unreadable_logs") or {}
    if name in unreadable:
        raise Unreadable(str(unreadable[name]))
    logs = events["logs"]
    if name not in logs:
        raise Unreadable(f"the {name!r} event log was not read")
    return list(logs[name])


def _undecided(events: list[EventData], what: str) -> None:
    """Raise Unreadable when an event's message could not be formatted.

    Why: a check that looks for a text in messages cannot call a log clean while some of
    its messages are unknown.
    """
    unknown = [e for e in events if e.get("message_error")]
    if unknown:
        newest = max(unknown, key=lambda e: str(e["time"]))
        raise Unreadable(
            f"{len(unknown)} event(s) (newest id {newest['id']} at {newest['time']}) have a "
            f"message the host could not format ({newest['message_error']}), so whether any "
            f"is {what} cannot be told"
        )


def _summary(events: list[EventData]) -> str:
    newest = max(events, key=lambda e: str(e["time"]))
    message = " ".join(str(newest["message"]).split())[:300]
    return f"{len(events)} event(s), newest at {newest['time']} (id {newest['id']}): {message}"


def _verdict(events: list[EventData], what: str, settings: Settings) -> Verdict:
    expected = f"no {what} in the last {settings.lookback_hours:g} h"
    if events:
        return failed(_summary(events), expected, "events")
    return passed(f"no {what} in the last {settings.lookback_hours:g} h", expected, "events")


@check("HRW-W02")
def event_4502(facts: HostFacts, item: str, settings: Settings) -> Verdict:
    """HRW-W02: return whether Operations Manager holds event 4502 naming the hybrid agent."""
    all_4502 = [e for e in _log(facts, OPS_MANAGER) if int(e["id"]) == 4502]
    found = [e for e in all_4502 if HYBRID_AGENT in str(e["message"])]
    if not found:
        _undecided(all_4502, f"an event 4502 naming {HYBRID_AGENT}")
    return _verdict(found, f"event 4502 naming {HYBRID_AGENT} in '{OPS_MANAGER}'", settings)


@check("HRW-W03")
def sma_exit_code(facts: HostFacts, item: str, settings: Settings) -> Verdict:
    """HRW-W03: return whether Microsoft-SMA logged 'Win32 Process Exited with code
    [4294967295]'."""
    events = _log(facts, SMA)
    found = [e for e in events if EXIT_4294967295 in str(e["message"])]
    if not found:
        _undecided(events, f"'{EXIT_4294967295}'")
    return _verdict(found, f"'{EXIT_4294967295}' in '{SMA}'", settings)


@check("HRW-W04")
def connectivity_events(facts: HostFacts, item: str, settings: Settings) -> Verdict:
    """HRW-W04: return whether the event named by ``item`` (e.g. om-2138) was logged."""
    prefix, _, number = item.partition("-")
    log = LOGS[prefix]
    found = [e for e in _log(facts, log) if int(e["id"]) == int(number)]
    return _verdict(found, f"event {number} in '{log}'", settings)
