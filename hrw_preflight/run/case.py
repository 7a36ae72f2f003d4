"""One parametrised check: a scenario, an item and a host, with its facts and verdict."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from hrw_preflight.facts.model import HostFacts
from hrw_preflight.hosts.redact import Redactor
from hrw_preflight.hosts.targets import Target
from hrw_preflight.run.terminal_text import terminal_safe
from hrw_preflight.verdicts import Verdict
from hrw_preflight.verdicts.catalogue import Scenario
from hrw_preflight.verdicts.error_fix import error_fix

EVIDENCE_CHARS = 8_000  # characters of evidence a report keeps per check


def bound(text: str, limit: int = EVIDENCE_CHARS) -> tuple[str, bool]:
    """Return ``text`` cut to ``limit`` characters with a marker, and whether it was cut."""
    if len(text) <= limit:
        return text, False
    return text[:limit] + f"\n... ({len(text) - limit} more chars not kept)", True


@dataclass(frozen=True)
class CaseKey:
    """What a test is parametrised by; its id is ``<host>:<scenario>:<item>``."""

    host: str
    scenario: str
    item: str

    @property
    def id(self) -> str:
        """Return the pytest id: inventory host name, scenario id and item."""
        return f"{self.host}:{self.scenario}:{self.item}"


@dataclass(frozen=True)
class Case:
    """A judged check, as the test body and the reports see it."""

    target: Target
    scenario: Scenario
    item: str
    facts: HostFacts
    verdict: Verdict
    redact: Redactor

    def __repr__(self) -> str:
        # Tracebacks print fixture values; keep facts (and anything secret in them) out.
        return f"Case({self.target.name}:{self.scenario.id}:{self.item} {self.verdict.outcome})"

    @property
    def fix(self) -> str:
        """Return what to do: the scenario's remediation for a failure; for an error, how to
        make the check possible (reach the host, trust its key, log in, read the fact)."""
        if self.verdict.outcome == "error":
            return error_fix(self.verdict.seen)
        return self.scenario.remediation

    def explain(self) -> str:
        """Return the failure message: scenario, host, what was seen and expected, the fix."""
        v = self.verdict
        word = {"failed": "failed", "error": "could not be checked"}.get(v.outcome, v.outcome)
        lines = [
            f"{self.scenario.id} {word} on {self.target.name} [{self.item}]: {self.scenario.title}",
            f"  seen:     {v.seen}",
        ]
        if v.expected:
            lines.append(f"  expected: {v.expected}")
        lines.append(f"  fix:      {self.fix}")
        lines.append(f"  article:  {self.scenario.section}")
        return terminal_safe(self.redact("\n".join(lines)))

    @functools.cached_property
    def evidence(self) -> str:
        """Return the raw probe output this verdict judged, redacted and bounded."""
        # Each part is redacted on its own: every check of a host shows the same sections,
        # so the redactor's memo answers all but the first (the patterns never span lines,
        # so masking the parts apart masks what masking the joined text would).
        parts: list[str] = []
        if self.facts.internal_error:
            parts.append(self.redact(f"[internal error] {self.facts.internal_error}"))
        if self.facts.connect_error:
            parts.append(self.redact(f"[connection] {self.facts.connect_error}"))
        for name in self.verdict.sections or self.scenario.needs:
            section = self.facts.section(name)
            # Masked here, before report_evidence cuts it, so that no cut halves a secret.
            body = self.redact(section.raw) if section.raw else "(no output)"
            status = f"error: {section.error}" if section.error else "read"
            head = self.redact(f"[{name}] taken {section.taken_at} ({status})")
            parts.append(f"{head}\n{body}")
        return "\n\n".join(parts)

    @functools.cached_property
    def report_evidence(self) -> tuple[str, bool]:
        """Return the evidence as every report keeps it (HTML and evidence.json alike): cut
        to :data:`EVIDENCE_CHARS`, and whether it was cut."""
        return bound(self.evidence)
