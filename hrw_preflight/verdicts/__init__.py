"""Verdicts: pure functions from a host's facts to pass, fail, error or skip, by scenario id."""

from __future__ import annotations

from hrw_preflight.facts.model import HostFacts
from hrw_preflight.verdicts import general, image, linux, windows
from hrw_preflight.verdicts.base import Judge, Settings, Verdict, errored

JUDGES: dict[str, Judge] = {
    "HRW-G01": general.outbound_443,
    "HRW-G02": general.hardware_minimum,
    "HRW-G03": general.resource_pressure,
    "HRW-G04": general.azure_ca_chain,
    "HRW-L01": linux.worker_processes,
    "HRW-L02": linux.omsagent_running,
    "HRW-L03": linux.omsconfig_class_missing,
    "HRW-W01": windows.healthservice,
    "HRW-W02": windows.event_4502,
    "HRW-W03": windows.sma_exit_code,
    "HRW-W04": windows.connectivity_event,
    "HRW-I01": image.linux_tools,
    "HRW-I02": image.windows_prereqs,
    "HRW-I03": image.clock_skew,
}


def judge(scenario_id: str, item: str, facts: HostFacts, settings: Settings) -> Verdict:
    """Return the verdict of scenario ``scenario_id`` for ``item`` on the host of ``facts``.

    A host that could not be reached gives an error verdict carrying the connection error.
    """
    if facts.connect_error:
        return errored(f"host unreachable: {facts.connect_error}")
    return JUDGES[scenario_id](facts, item, settings)


__all__ = ["JUDGES", "Settings", "Verdict", "judge"]
