"""The check registry: each verdict registers itself under its scenario id with ``@check``.

Why: a scenario is described once in ``catalogue.yaml`` and judged once, by the function
that carries its ``@check(ID)``; nothing else lists scenarios. ``tests_infra/`` generates
its tests from this registry and a unit test fails when the catalogue and the registry
disagree.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from hrw_preflight.verdicts.base import Judge, guarded


@dataclass(frozen=True)
class Check:
    """A registered verdict: the scenario it judges, the guarded judge, where it lives."""

    scenario_id: str
    judge: Judge
    module: str  # the verdict module's short name, e.g. "general"; tests_infra/test_<module>.py
    name: str  # the function's name; its test is test_<name>


_REGISTRY: dict[str, Check] = {}


def check(scenario_id: str) -> Callable[[Judge], Judge]:
    """Return a decorator that registers a verdict function as the judge of ``scenario_id``.

    The function is wrapped by :func:`guarded`, so unreadable or malformed facts end as error
    verdicts. Registering the same id twice is a programming error and raises at import.
    """

    def register(judge: Judge) -> Judge:
        if scenario_id in _REGISTRY:
            other = _REGISTRY[scenario_id]
            raise RuntimeError(
                f"{scenario_id} is registered twice: {other.module}.{other.name} and "
                f"{judge.__module__}.{judge.__name__}"
            )
        wrapped = guarded(judge)
        module = judge.__module__.rsplit(".", 1)[-1]
        _REGISTRY[scenario_id] = Check(scenario_id, wrapped, module, judge.__name__)
        return wrapped

    return register


@cache
def registered_checks() -> dict[str, Check]:
    """Return every registered check by scenario id, after importing every verdict module.

    Why import them all: a check registers when its module is imported, and a new verdict
    module must need no edit anywhere else to be found.
    """
    package = importlib.import_module("hrw_preflight.verdicts")
    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")
    return dict(_REGISTRY)


def checks_in(module: str) -> list[Check]:
    """Return the checks registered in verdict module ``module`` (short name), by scenario id."""
    return sorted(
        (c for c in registered_checks().values() if c.module == module),
        key=lambda c: c.scenario_id,
    )
