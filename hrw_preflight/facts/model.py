"""Plain data that probes return and verdicts judge.

A probe turns one host's raw output into a :class:`HostFacts`. Every piece of it is a
:class:`Section`: parsed data, or an error saying why it could not be read, plus the raw
text it came from (kept as evidence). Verdicts never see a connection, only these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hrw_preflight.hosts.errors import HostUnreachable
from hrw_preflight.hosts.targets import Platform

__all__ = ["HostFacts", "HostUnreachable", "Platform", "Section", "internal_error", "utc_now"]


def utc_now() -> str:
    """Return the current UTC time in ISO 8601, the timestamp every section carries."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def internal_error(exc: BaseException) -> str:
    """Return the text every check of a host shows when the suite failed while probing it.

    Why: a bug in the suite must never read as a host problem (unreachable, unreadable).
    """
    summary = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return (
        "internal error in hrw-preflight while probing (a bug in the suite, not a problem of "
        f"the host; please report it): {type(exc).__name__}: {summary}"
    )


@dataclass(frozen=True)
class Section:
    """One named part of a host's facts.

    ``data`` is None exactly when ``error`` says why the part could not be read; a verdict
    that needs an unreadable section returns an error outcome, never a pass.
    """

    name: str
    data: dict[str, Any] | None
    error: str | None = None
    raw: str = ""
    taken_at: str = field(default_factory=utc_now)

    @classmethod
    def failed(cls, name: str, error: str, raw: str = "") -> Section:
        """Return a section that records why ``name`` could not be read."""
        return cls(name=name, data=None, error=error, raw=raw)


@dataclass
class HostFacts:
    """Everything the suite learned about one host in one run.

    ``connect_error`` is set when the host could not be reached at all; then ``sections``
    is empty and every check of the host ends as an error with that reason.
    ``internal_error`` is set when the suite itself failed while probing (a bug, not a host
    problem); every check of the host then ends as an error that says so.
    """

    host: str
    platform: Platform
    sections: dict[str, Section] = field(default_factory=dict)
    connect_error: str | None = None
    internal_error: str | None = None
    commands: int = 0  # remote commands this host was asked, for the round-trip budget
    # Secrets the probe met on the host (proxy.conf passwords), for the run's redactor;
    # never shown, never written to a report.
    secrets: list[str] = field(default_factory=list, repr=False)

    def section(self, name: str) -> Section:
        """Return the named section, or an error section if the probe never produced it."""
        found = self.sections.get(name)
        if found is not None:
            return found
        reason = self.connect_error or f"the probe returned no '{name}' section"
        return Section.failed(name, reason)
