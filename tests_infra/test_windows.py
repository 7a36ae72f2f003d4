"""Scenarios of the article's Windows section (and the SMA event of General), over WinRM.
PYTEST_DONT_REWRITE: the assertion message is the report; pytest's introspection would
only repeat the objects.
"""

import pytest

from hrw_preflight.run.case import Case


@pytest.mark.scenario("HRW-W01")
def test_healthservice(hrw_case: Case) -> None:
    """HealthService exists, runs and starts automatically."""
    assert hrw_case.verdict.passed, hrw_case.explain()


@pytest.mark.scenario("HRW-W02")
def test_event_4502(hrw_case: Case) -> None:
    """No event 4502 for the hybrid agent in Operations Manager."""
    assert hrw_case.verdict.passed, hrw_case.explain()


@pytest.mark.scenario("HRW-W03")
def test_sma_exit_code(hrw_case: Case) -> None:
    """No 'Win32 Process Exited with code [4294967295]' in Microsoft-SMA."""
    assert hrw_case.verdict.passed, hrw_case.explain()


@pytest.mark.scenario("HRW-W04")
def test_connectivity_events(hrw_case: Case) -> None:
    """No agent connectivity error events."""
    assert hrw_case.verdict.passed, hrw_case.explain()
