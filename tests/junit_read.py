"""Reading JUnit reports back in tests, with junitparser."""

from __future__ import annotations

from collections.abc import Iterator

from junitparser import JUnitXml, Properties, TestCase


def cases(path: str) -> Iterator[TestCase]:
    """Return every testcase of a JUnit file, across its suites."""
    for suite in JUnitXml.fromfile(path):
        yield from suite


def properties(case: TestCase) -> dict[str, str]:
    """Return a testcase's properties by name."""
    found: dict[str, str] = {}
    for group in case.iterchildren(Properties):  # type: ignore[no-untyped-call]
        for prop in group:
            found[str(prop.name)] = str(prop.value)
    return found
