"""Verdicts: pure functions from a host's facts to pass, fail, error or skip, by scenario id.

Each verdict module registers its functions with ``@check(ID)``
(:mod:`hrw_preflight.verdicts.registry`); :func:`judge` finds them there.
"""

from __future__ import annotations

from hrw_preflight.facts.model import HostFacts
from hrw_preflight.hosts.errors import LOGIN_FAILED, ConfigError
from hrw_preflight.verdicts.applies import applicability
from hrw_preflight.verdicts.base import Settings, Verdict, errored
from hrw_preflight.verdicts.catalogue import load_catalogue
from hrw_preflight.verdicts.registry import registered_checks


def judge(scenario_id: str, item: str, facts: HostFacts, settings: Settings) -> Verdict:
    """Return the verdict of scenario ``scenario_id`` for ``item`` on the host of ``facts``.

    A host that could not be reached gives an error verdict carrying the connection error;
    a scenario of one worker kind on a host without that kind is skipped with the reason.
    """
    checks = registered_checks()
    if scenario_id not in checks:
        raise ConfigError(f"no verdict is registered for {scenario_id}: add @check to its judge")
    if facts.internal_error:
        return errored(facts.internal_error)
    if facts.connect_error:
        if facts.connect_error.startswith(LOGIN_FAILED):  # reached, but no login possible
            return errored(facts.connect_error)
        return errored(f"host unreachable: {facts.connect_error}")
    gate = applicability(load_catalogue().get(scenario_id), facts)
    if gate is not None:
        return gate
    return checks[scenario_id].judge(facts, item, settings)


__all__ = ["Settings", "Verdict", "judge"]
