"""Scenarios of the article's General section, checked on Linux and Windows workers.

Each test is parametrised by the plugin over (host, item); the ``hrw_case`` fixture gathers
the host's facts once, judges them, and errors out early if they could not be read.

PYTEST_DONT_REWRITE: the assertion message is the report; pytest's introspection would
only repeat the objects.
"""

import pytest

from hrw_preflight.run.case import Case


@pytest.mark.scenario("HRW-G01")
def test_outbound_443(hrw_case: Case) -> None:
    """TCP 443 and a TLS handshake to each Automation endpoint, through the agent's proxy."""
    assert hrw_case.verdict.passed, hrw_case.explain()


@pytest.mark.scenario("HRW-G02")
def test_hardware_minimum(hrw_case: Case) -> None:
    """At least the minimum logical processors and memory."""
    assert hrw_case.verdict.passed, hrw_case.explain()


@pytest.mark.scenario("HRW-G03")
def test_resource_pressure(hrw_case: Case) -> None:
    """No CPU or memory pressure at probe time."""
    assert hrw_case.verdict.passed, hrw_case.explain()


@pytest.mark.scenario("HRW-G04")
def test_azure_ca_chain(hrw_case: Case) -> None:
    """The certificate chain each endpoint presents is issued by a CA on the Azure list."""
    assert hrw_case.verdict.passed, hrw_case.explain()
