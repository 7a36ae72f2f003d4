"""Do a bundle's files agree with each other? Counts against checks, JUnit against the record.

The run writes the same outcomes three times: ``evidence.json``'s ``summary`` counts, its
``checks``, and ``junit.xml``'s test cases. Editing one of them (a failure turned into a
pass) and writing new hashes leaves the others telling the truth, so ``verify`` compares
them. This catches a careless edit, not a careful forger who rewrites every file: only a
signature (:mod:`hrw_preflight.report.signing`) ties the bundle to who produced it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Mapping, Set
from pathlib import Path
from typing import Any

Key = tuple[str, str, str]


def summary_problems(record: dict[str, Any]) -> list[str]:
    """Return one line for each outcome whose ``summary`` count differs from the checks'."""
    summary = record.get("summary")
    checks = record.get("checks")
    if not isinstance(summary, dict) or not isinstance(checks, list):
        return []  # the schema check reports the shape
    counted = Counter(str(c.get("outcome")) for c in checks if isinstance(c, dict))
    problems = []
    for outcome in sorted(set(summary) | set(counted)):
        said, held = summary.get(outcome, 0), counted.get(outcome, 0)
        if said != held:
            problems.append(
                f"evidence.json: summary says {said} {outcome} but its checks hold {held}: "
                "the record was changed after the run"
            )
    return problems


def unreadable(exc: Exception) -> str:
    """Return the problem line for a ``junit.xml`` that cannot be read or parsed."""
    return f"junit.xml: not readable XML ({exc.__class__.__name__})"


def case_outcome(case: ET.Element) -> tuple[Key, tuple[str, str]] | None:
    """Return ``((host, scenario, item), (outcome property, outcome its elements show))`` of
    one test case, or None for a case that is no check's (no ``scenario_id`` property)."""
    values = {p.get("name"): p.get("value") for p in case.iter("property")}
    return outcome_of(values, {child.tag for child in case})


def outcome_of(
    values: Mapping[str | None, str | None], tags: Set[str]
) -> tuple[Key, tuple[str, str]] | None:
    """Return what :func:`case_outcome` returns for a test case whose properties are
    ``values`` (name -> value, as the file has them) and whose child elements are ``tags``;
    for a reader that has both at hand already (the merge)."""
    scenario = values.get("scenario_id")
    if not scenario:
        return None
    shown = (
        "error"
        if "error" in tags
        else "failed"
        if "failure" in tags
        else "skipped"
        if "skipped" in tags
        else "passed"
    )
    key = (values.get("host") or "", scenario, values.get("item") or "")
    return key, (values.get("outcome") or "", shown)


def _junit_outcomes(path: Path) -> dict[Key, tuple[str, str]] | str:
    """Return (host, scenario, item) -> (outcome property, outcome its elements show) for
    every check's test case in ``path``, or why the file cannot be read."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        return unreadable(exc)
    found: dict[Key, tuple[str, str]] = {}
    for case in root.iter("testcase"):
        outcome = case_outcome(case)
        if outcome is not None:
            found[outcome[0]] = outcome[1]
    return found


# Which JUnit elements an outcome may come with: a waived failure is a skip in JUnit, and a
# teardown error can sit on a test case whose check failed.
_SHOWN_AS = {
    "passed": {"passed"},
    "failed": {"failed", "error"},
    "error": {"error", "failed"},
    "skipped": {"skipped"},
    "waived": {"skipped"},
}


def recorded_outcomes(record: dict[str, Any]) -> dict[Key, str]:
    """Return (host, scenario, item) -> outcome of every check the record holds."""
    recorded: dict[Key, str] = {}
    for check in record.get("checks") or []:
        if isinstance(check, dict) and check.get("scenario_id"):
            key = (str(check.get("host") or ""), str(check["scenario_id"]), str(check.get("item")))
            recorded[key] = str(check.get("outcome"))
    return recorded


def outcome_problems(junit: dict[Key, tuple[str, str]], recorded: dict[Key, str]) -> list[str]:
    """Return one line for each check whose outcome in JUnit (``junit``, from
    :func:`case_outcome`) differs from the record's (``recorded``), or that is in one and
    not the other."""
    problems = []
    for key in sorted(set(junit) | set(recorded)):
        name = ":".join(key)
        if key not in junit:
            problems.append(f"junit.xml: no test case for {name}, which evidence.json records")
            continue
        if key not in recorded:
            problems.append(f"evidence.json: no check {name}, which junit.xml holds")
            continue
        said, shown = junit[key]
        if said != recorded[key]:
            problems.append(
                f"junit.xml: {name} is {said} there but {recorded[key]} in evidence.json"
            )
        elif shown not in _SHOWN_AS.get(said, {said}):
            problems.append(f"junit.xml: {name} says {said} but its test case shows {shown}")
    return problems


def junit_problems(path: Path, record: dict[str, Any]) -> list[str]:
    """Return one line for each check whose outcome in ``junit.xml`` differs from the
    record's, or that is in one file and not the other."""
    junit = _junit_outcomes(path)
    if isinstance(junit, str):
        return [junit]
    return outcome_problems(junit, recorded_outcomes(record))
