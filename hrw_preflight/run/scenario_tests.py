"""The catalogue's tests, generated from the registered checks.

``tests_infra/test_<module>.py`` holds one line that puts here the test functions of every
check registered in ``hrw_preflight/verdicts/<module>.py``: a new check needs no test function
written by hand, and each test keeps the name and node id it always had
(``tests_infra/test_general.py::test_outbound_443[<host>:HRW-G01:agentsvc]``).

PYTEST_DONT_REWRITE: the assertion message is the report; pytest's introspection would only
repeat the objects.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pytest

from hrw_preflight.run.case import Case
from hrw_preflight.verdicts.catalogue import load_catalogue
from hrw_preflight.verdicts.registry import Check, checks_in

TestFunction = Callable[[Case], None]


def _test_for(check: Check, module_name: str, where: tuple[str, int]) -> TestFunction:
    scenario = load_catalogue().get(check.scenario_id)

    def test(hrw_case: Case) -> None:
        assert hrw_case.verdict.passed, hrw_case.explain()

    # Reports name where a check failed; that is the test module's generating line, not this
    # file (the assert is one line below the def, hence the line before).
    filename, line = where
    test.__code__ = test.__code__.replace(co_filename=filename, co_firstlineno=line - 1)
    test.__name__ = test.__qualname__ = f"test_{check.name}"
    test.__module__ = module_name
    test.__doc__ = f"{scenario.id}: {scenario.title}"
    marked: TestFunction = pytest.mark.scenario(check.scenario_id)(test)
    return marked


def scenario_tests(verdict_module: str, module_name: str) -> dict[str, TestFunction]:
    """Return ``{test name: test function}`` for the checks of ``verdict_module``.

    ``module_name`` is the test module's ``__name__``, so the functions report it as theirs.
    Each test asserts that its check passed, with the check's explanation as the message;
    the plugin parametrises it over (host, item) from its ``scenario`` marker.
    """
    caller = inspect.stack(context=0)[1]
    where = (caller.filename, caller.lineno)
    tests = [_test_for(check, module_name, where) for check in checks_in(verdict_module)]
    return {t.__name__: t for t in tests}
