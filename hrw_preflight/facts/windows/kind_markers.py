"""What shows the agent-based worker installed on Windows, read from the probe's sections.

Why here: the Windows probe's ``service`` and ``worker`` sections already hold the markers
(HealthService, the AzureAutomation folder, the HybridRunbookWorker
registry groups); the kind section is derived from them by :func:`windows_kind`.
"""

from __future__ import annotations

from collections.abc import Mapping

from hrw_preflight.facts.kind import WINDOWS_EXTENSION_SECTIONS, derive_kind
from hrw_preflight.facts.model import Section


def agent_markers(sections: Mapping[str, Section]) -> tuple[list[str] | None, str | None]:
    """Return (markers of the agent-based worker, None) or (None, why unknown).

    The Microsoft Monitoring Agent's HealthService hosts the agent-based worker, so a
    HealthService read as not installed settles 'not installed' (the HybridRunbookWorker
    registry key without it is a remnant, HRW-X04). Otherwise any marker read settles it,
    and 'not installed' needs both sections read. The workspace id is no marker:
    ``--hrw-workspace-id`` puts one into the worker section of an image.
    """
    markers: list[str] = []
    errors: list[str] = []
    service, worker = sections.get("service"), sections.get("worker")
    if service is None or service.data is None:
        errors.append(f"service: {service.error if service else 'not read'}")
    elif service.data.get("exists"):
        markers.append(f"service {service.data.get('name') or 'HealthService'}")
    else:
        return [], None
    if worker is None or worker.data is None:
        errors.append(f"worker: {worker.error if worker else 'not read'}")
    else:
        data = worker.data
        if data.get("version"):
            markers.append(f"AzureAutomation {data['version']}")
        if data.get("update_management") or data.get("user_worker"):
            markers.append("HKLM:\\SOFTWARE\\Microsoft\\HybridRunbookWorker groups")
    if markers:
        return markers, None
    if errors:
        return None, "; ".join(errors)
    return [], None


def windows_kind(sections: Mapping[str, Section]) -> Section:
    """Return the ``kind`` section of a Windows host from its other sections."""
    markers, unknown = agent_markers(sections)
    return derive_kind(markers, unknown, sections, WINDOWS_EXTENSION_SECTIONS)
