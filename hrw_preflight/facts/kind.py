"""Which worker kinds a host runs and where it runs, derived from its other fact sections.

Why a derived section: every platform's probe reads the markers its own way, but the
decision (agent-based, extension-based, both or none; Azure VM, Arc-enabled server or
neither) is one rule, judged the same for both platforms and shown in every report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hrw_preflight.facts.ext_schema import Kind, KindFacts, Place
from hrw_preflight.facts.model import Section

# Sections whose absence means the platform's probe does not read them yet (said so plainly
# in the kind section, so a check that needs one is skipped with that reason, not failed).
EXTENSION_SECTIONS = ("extension", "ext_service", "arc", "identity", "remnants")
WINDOWS_EXTENSION_SECTIONS = (*EXTENSION_SECTIONS, "arc_acl")


def kind_name(agent: bool | None, extension: bool | None) -> Kind | None:
    """Return the kind for the two presences, or None when either is unknown and the other
    does not settle it (why: 'both' and 'none' need both answers)."""
    if agent is None or extension is None:
        return None
    if agent and extension:
        return "both"
    if agent:
        return "agent"
    return "extension" if extension else "none"


def _place(sections: Mapping[str, Section]) -> tuple[Place | None, list[str], str | None]:
    """Return (place, what showed it, why unknown) from the ``arc`` and ``identity`` sections:
    Arc when the Connected Machine agent is installed, an Azure VM when IMDS answered."""
    arc = sections.get("arc")
    if arc is None or arc.data is None:
        return None, [], f"Arc agent: {arc.error if arc else 'not read'}"
    if arc.data["installed"]:
        return "arc", [str(m) for m in arc.data["markers"]], None
    identity = sections.get("identity")
    if identity is None or identity.data is None:
        return None, [], f"IMDS: {identity.error if identity else 'not read'}"
    imds = identity.data["imds"]
    if imds["answered"]:
        return "azure-vm", [f"IMDS 169.254.169.254 answered HTTP {imds['status']}"], None
    return "none", [f"no Arc agent; IMDS did not answer ({imds.get('error') or 'no answer'})"], None


def derive_kind(
    agent_markers: Sequence[str] | None,
    agent_unknown: str | None,
    sections: Mapping[str, Section],
    expected: Sequence[str] = EXTENSION_SECTIONS,
) -> Section:
    """Return the ``kind`` section (:class:`KindFacts`).

    ``agent_markers`` are what showed the agent-based worker installed (empty: not
    installed; None: could not be read, ``agent_unknown`` says why). The extension and the
    place are read from the ``extension``, ``arc`` and ``identity`` sections; one the probe
    did not produce at all, of those this platform has (``expected``), is listed in
    ``not_probed``. When nothing could be read, the
    section is an error (why: a kind made of unknowns would only hide the reason).
    """
    not_probed = [name for name in expected if name not in sections]
    unknown: dict[str, str] = {}
    agent = None if agent_markers is None else bool(agent_markers)
    if agent is None:
        unknown["agent"] = agent_unknown or "the agent's files could not be read"
    ext = sections.get("extension")
    ext_markers: list[str] = []
    extension: bool | None = None
    if ext is None:
        unknown["extension"] = "this platform's probe does not read the extension yet"
    elif ext.data is None:
        unknown["extension"] = str(ext.error)
    else:
        extension = bool(ext.data["installed"])
        if extension:
            ext_markers.append(str(ext.data["folder"]))
    place, place_markers, place_unknown = _place(sections)
    if place_unknown:
        unknown["place"] = place_unknown
    if agent is None and extension is None and place is None:
        return Section.failed(
            "kind", "the worker kind could not be read: " + "; ".join(unknown.values())
        )
    data: KindFacts = {
        "kind": kind_name(agent, extension),
        "agent": agent,
        "extension": extension,
        "place": place,
        "markers": {
            "agent": list(agent_markers or []),
            "extension": ext_markers,
            "place": place_markers,
        },
        "unknown": unknown,
        "not_probed": not_probed,
    }
    lines = [
        f"kind: {data['kind'] or 'unknown'} (agent-based: {_yes(agent)}, extension-based: "
        f"{_yes(extension)}); runs on: {place or 'unknown'}",
        *(f"{what} marker: {m}" for what, ms in data["markers"].items() for m in ms),
        *(f"{what} unknown: {why}" for what, why in unknown.items()),
    ]
    if not_probed:
        lines.append(f"not read by this platform's probe yet: {', '.join(not_probed)}")
    return Section("kind", dict(data), raw="\n".join(lines))


def _yes(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


def describe(kind: Mapping[str, object] | None) -> str:
    """Return the one-line kind shown per host in the terminal, the HTML matrix and the
    record, e.g. ``extension-based on Arc``; ``unknown`` when it could not be told."""
    if not kind:
        return "unknown"
    name = kind.get("kind")
    words = {
        "agent": "agent-based",
        "extension": "extension-based",
        "both": "agent-based + extension-based",
        "none": "no worker",
    }
    if name in words:
        text = words[str(name)]
    else:  # one kind known installed (or neither), the other unknown
        found = [words[k] for k in ("agent", "extension") if kind.get(k) is True]
        unknown = [f"{words[k]} unknown" for k in ("agent", "extension") if kind.get(k) is None]
        text = " + ".join(found) + (f" ({', '.join(unknown)})" if found else ", ".join(unknown))
    place = {"azure-vm": "Azure VM", "arc": "Arc", "none": "neither Azure VM nor Arc"}
    where = kind.get("place")
    return f"{text} on {place[str(where)]}" if where in place else f"{text}, place unknown"
