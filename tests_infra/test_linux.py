"""Scenarios of the article's Linux section, checked on Linux workers over SSH.
PYTEST_DONT_REWRITE: the assertion message is the report; pytest's introspection would
only repeat the objects.
"""

import pytest

from hrw_preflight.run.case import Case


@pytest.mark.scenario("HRW-L01")
def test_worker_processes(hrw_case: Case) -> None:
    """Worker manager, auto-registered and user workers run as nxautomation."""
    assert hrw_case.verdict.passed, hrw_case.explain()


@pytest.mark.scenario("HRW-L02")
def test_omsagent_running(hrw_case: Case) -> None:
    """The OMS Agent for Linux daemon runs."""
    assert hrw_case.verdict.passed, hrw_case.explain()


@pytest.mark.scenario("HRW-L03")
def test_omsconfig_class_missing(hrw_case: Case) -> None:
    """omsconfig.log does not report 'The specified class does not exist'."""
    assert hrw_case.verdict.passed, hrw_case.explain()
