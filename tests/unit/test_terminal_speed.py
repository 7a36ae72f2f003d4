"""The indexed teardown lookup prints exactly what pytest's own scan prints."""

from __future__ import annotations

import pytest

from hrw_preflight.run.terminal_speed import index_teardown_reports

pytest_plugins = ["pytester"]

TESTS = """
import pytest

@pytest.fixture
def noisy():
    yield
    print("teardown says hello")

@pytest.mark.parametrize("n", range(6))
def test_fails(noisy, n):
    print(f"call {n}")
    assert n % 2, f"failure {n}"

def test_teardown_fails():
    pass

@pytest.fixture
def broken():
    yield
    raise RuntimeError("teardown broke")

def test_with_broken_teardown(broken):
    assert False, "and the call failed too"
"""

INDEXING_PLUGIN = """
from hrw_preflight.run.terminal_speed import index_teardown_reports

def pytest_sessionstart(session):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    assert index_teardown_reports(reporter)
"""


def _summary(pytester: pytest.Pytester, *args: str) -> list[str]:
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-rA", *args)
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if "FAILURES" in line)
    # The timing line at the end differs between runs.
    return [line for line in lines[start:] if " in " not in line or "=" not in line]


def test_failures_section_is_the_same_with_the_index(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_many=TESTS)
    plain = _summary(pytester)
    pytester.makepyfile(indexing=INDEXING_PLUGIN)
    pytester.syspathinsert()
    indexed = _summary(pytester, "-p", "indexing")
    assert indexed == plain
    # The teardown sections pytest adds to a failure are really in what was compared.
    failures = plain[: next(i for i, line in enumerate(plain) if " PASSES " in line)]
    assert sum("Captured stdout teardown" in line for line in failures) == 3
    assert any("teardown broke" in line for line in plain)


def test_a_pytest_without_the_method_is_left_alone() -> None:
    class Reporter:
        def __init__(self) -> None:
            self.stats: dict[str, list[object]] = {}

    assert index_teardown_reports(Reporter()) is False  # type: ignore[arg-type]
