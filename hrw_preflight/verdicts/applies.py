"""Whether a scenario applies to a host's worker kind(s).

Why apart from the verdicts: a scenario of the agent-based worker on an extension-only host
(or the other way round) is skipped with one rule and one wording, before its verdict runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hrw_preflight.facts.kind import describe
from hrw_preflight.facts.model import HostFacts
from hrw_preflight.verdicts.base import Verdict, errored, skipped
from hrw_preflight.verdicts.catalogue import Scenario

KIND_WORDS = {"agent": "the agent-based worker", "extension": "the extension-based worker"}


def not_probed(kind: Mapping[str, Any], *sections: str) -> list[str]:
    """Return those of ``sections`` that this host's platform probe does not read yet."""
    return [s for s in sections if s in (kind.get("not_probed") or [])]


def not_probed_skip(facts: HostFacts, platform_sections: list[str], scenario_id: str) -> Verdict:
    """Return the skip for a check whose facts this platform's probe does not read yet."""
    return skipped(
        f"the {facts.platform} probe does not read {', '.join(platform_sections)} yet, so "
        f"{scenario_id} is not checked on this host",
        "kind",
    )


def applicability(scenario: Scenario, facts: HostFacts) -> Verdict | None:
    """Return the skip (or error) that ends a check of one worker kind on a host without it,
    or None when the scenario applies (always, for scenarios of every kind).

    An unreadable kind is an error: a check is never skipped on a guess.
    """
    if scenario.every_kind:
        return None
    section = facts.section("kind")
    if section.data is None:
        return errored(f"the worker kind could not be told: {section.error}", "kind")
    kind = section.data
    present = [k for k in scenario.kinds if kind.get(k) is True]
    if present:
        return None
    missing = not_probed(kind, *(n for n in scenario.needs if n != "kind"))
    if missing:
        return not_probed_skip(facts, missing, scenario.id)
    unknown = [k for k in scenario.kinds if kind.get(k) is None]
    if unknown:
        why = "; ".join(str(kind["unknown"].get(k, "unknown")) for k in unknown)
        return errored(
            f"whether {' or '.join(KIND_WORDS[k] for k in unknown)} is installed could not be "
            f"told ({why}), so {scenario.id} cannot be judged",
            "kind",
        )
    wanted = " or ".join(KIND_WORDS[k] for k in scenario.kinds)
    return skipped(
        f"{scenario.id} checks {wanted}, which is not installed on this host (worker kind: "
        f"{describe(kind)})",
        "kind",
    )
