"""Verdicts about the worker kinds a host runs: some worker installed, no retired one."""

from __future__ import annotations

from hrw_preflight.facts.kind import describe
from hrw_preflight.facts.model import HostFacts
from hrw_preflight.verdicts.base import Settings, Unreadable, Verdict, failed, need, passed
from hrw_preflight.verdicts.registry import check

RETIRED = (
    "the agent-based user Hybrid Runbook Worker was retired on 31 August 2024 (no new ones "
    "since 1 November 2023; the Log Analytics agent it runs on is retired too)"
)


@check("HRW-K01")
def worker_installed(facts: HostFacts, item: str, settings: Settings) -> Verdict:
    """HRW-K01: return whether a hybrid worker of either kind is installed on the host.

    One kind found is enough to pass; 'none' needs both kinds known to be absent.
    """
    kind = need(facts, "kind")
    expected = "an agent-based or an extension-based hybrid worker installed"
    if kind["agent"] or kind["extension"]:
        found = [f"{k}: {', '.join(m)}" for k, m in kind["markers"].items() if m and k != "place"]
        return passed(f"{describe(kind)} ({'; '.join(found)})", expected, "kind")
    if kind["agent"] is None or kind["extension"] is None:
        raise Unreadable(
            "whether a worker is installed could not be told: "
            + "; ".join(f"{k}: {v}" for k, v in kind["unknown"].items() if k != "place")
        )
    return failed(
        "no hybrid worker of either kind is installed (no agent-based worker files, no "
        "hybrid worker extension folder)",
        expected,
        "kind",
    )


@check("HRW-R01")
def no_agent_worker(facts: HostFacts, item: str, settings: Settings) -> Verdict:
    """HRW-R01: return whether the host is free of the retired agent-based user worker; the
    failure names what was found, which is also what to clean after migrating."""
    kind = need(facts, "kind")
    expected = f"no agent-based worker: {RETIRED}"
    if kind["agent"] is None:
        raise Unreadable(f"whether the agent-based worker is installed: {kind['unknown']['agent']}")
    if not kind["agent"]:
        return passed(f"no agent-based worker installed ({describe(kind)})", expected, "kind")
    also = (
        "; the extension-based worker is installed too (migration under way)"
        if kind["extension"]
        else ""
    )
    return failed(
        f"agent-based worker installed: {', '.join(kind['markers']['agent'])}{also}",
        expected,
        "kind",
    )
