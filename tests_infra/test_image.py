"""Image readiness: what must hold on a freshly built image before the worker is registered.

PYTEST_DONT_REWRITE: the assertion message is the report; pytest's introspection would only
repeat the objects.
"""

import pytest

from hrw_preflight.run.case import Case


@pytest.mark.scenario("HRW-I01")
def test_linux_tools(hrw_case: Case) -> None:
    """python, openssl, sudo and curl are on the PATH."""
    assert hrw_case.verdict.passed, hrw_case.explain()


@pytest.mark.scenario("HRW-I02")
def test_windows_prerequisites(hrw_case: Case) -> None:
    """Windows PowerShell 5.1, .NET Framework 4.6.2+, TLS 1.2 client enabled."""
    assert hrw_case.verdict.passed, hrw_case.explain()


@pytest.mark.scenario("HRW-I03")
def test_clock_skew(hrw_case: Case) -> None:
    """The host's clock is within 15 minutes of the controller's."""
    assert hrw_case.verdict.passed, hrw_case.explain()
