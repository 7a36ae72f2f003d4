"""The verdict type and the settings verdicts judge against.

A verdict is a pure function of facts: it returns what was seen, what was expected and an
outcome. It never talks to a host, so every verdict can be tested on recorded facts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from hrw_preflight import defaults
from hrw_preflight.facts.model import HostFacts
from hrw_preflight.facts.schema import Unreadable as Unreadable
from hrw_preflight.facts.schema import section_data
from hrw_preflight.verdicts.certs import TrustedCAs

Outcome = Literal["passed", "failed", "error", "skipped"]


@dataclass(frozen=True)
class Settings:
    """Thresholds and trust the verdicts use; all configurable from the command line."""

    trusted: TrustedCAs
    min_logical_processors: int = defaults.MIN_LOGICAL_PROCESSORS
    min_memory_gb: float = defaults.MIN_MEMORY_GB
    max_cpu_load: float = defaults.MAX_CPU_LOAD
    min_memory_available_pct: float = defaults.MIN_MEMORY_AVAILABLE_PCT
    lookback_hours: float = defaults.LOOKBACK_HOURS


@dataclass(frozen=True)
class Verdict:
    """The judgement of one check on one host.

    ``seen`` says what the facts showed and ``expected`` what a healthy host shows; for an
    error it says what could not be read, for a skip why the check does not apply.
    """

    outcome: Outcome
    seen: str
    expected: str = ""
    sections: tuple[str, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        """Return True only for a pass (why: an error or skip must never count as healthy)."""
        return self.outcome == "passed"


def passed(seen: str, expected: str, *sections: str) -> Verdict:
    """Return a passing verdict."""
    return Verdict("passed", seen, expected, sections)


def failed(seen: str, expected: str, *sections: str) -> Verdict:
    """Return a failing verdict."""
    return Verdict("failed", seen, expected, sections)


def errored(seen: str, *sections: str) -> Verdict:
    """Return an error verdict: the facts needed could not be read or made no sense."""
    return Verdict("error", seen, "", sections)


def skipped(reason: str, *sections: str) -> Verdict:
    """Return a skip: the check does not apply to this host's configuration."""
    return Verdict("skipped", reason, "", sections)


# ``need(facts, name)`` returns the data of section ``name`` typed by its declared shape
# (hrw_preflight/facts/schema.py), so mypy checks every key a verdict reads, or raises
# Unreadable with the probe's reason (an error verdict, see guarded).
need = section_data


Judge = Callable[[HostFacts, str, Settings], Verdict]


def guarded(judge: Judge) -> Judge:
    """Return ``judge`` wrapped so that unreadable or malformed facts become error verdicts.

    Why: verdicts index into plain data; a missing key or a wrong type in a probe's output
    must end as an error that says so, never as a crash that looks like a failure, nor a pass.
    """

    def run(facts: HostFacts, item: str, settings: Settings) -> Verdict:
        try:
            return judge(facts, item, settings)
        except Unreadable as exc:
            return errored(str(exc))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            return errored(f"malformed facts ({exc.__class__.__name__}: {exc})")

    run.__name__ = judge.__name__
    run.__doc__ = judge.__doc__
    return run
