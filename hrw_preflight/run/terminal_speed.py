"""pytest's FAILURES section without its cost per failure times every report.

For each failed test the terminal reporter looks for that test's teardown report by scanning
every report of the run (``TerminalReporter._get_teardown_reports``). At 200 hosts, about
450 failures times 26,000 reports, that scan was a fifth of the controller's CPU for the
whole run. :func:`index_teardown_reports` gives the reporter a lookup that indexes the
teardown reports once and answers the same lists, in the same order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable

import pytest


def _node_key(report: pytest.TestReport) -> Hashable:
    # pytest 9 looks reports up by their structured ``id``; pytest 8 by ``nodeid``.
    key: Hashable = getattr(report, "id", report.nodeid)
    return key


def teardown_index(reports: list[pytest.TestReport]) -> dict[Hashable, list[pytest.TestReport]]:
    """Return node id -> its teardown reports, in the order given (pytest's own answer)."""
    index: dict[Hashable, list[pytest.TestReport]] = defaultdict(list)
    for report in reports:
        if report.when == "teardown":
            index[_node_key(report)].append(report)
    return index


def index_teardown_reports(reporter: pytest.TerminalReporter) -> bool:
    """Give ``reporter`` an indexed teardown lookup; return False (and leave it as is) when
    this pytest has no such method to replace.

    pytest scans the reports it files under "" (passed setups and teardowns, and others);
    the index covers the same list and is rebuilt whenever that list has grown since.
    """
    if not callable(getattr(reporter, "_get_teardown_reports", None)):
        return False
    built: dict[Hashable, list[pytest.TestReport]] = {}
    indexed = -1

    def lookup(node_id: Hashable) -> list[pytest.TestReport]:
        nonlocal built, indexed
        filed = reporter.stats.get("", [])
        if indexed != len(filed):
            built, indexed = teardown_index(reporter.getreports("")), len(filed)
        return list(built.get(node_id, ()))

    reporter._get_teardown_reports = lookup  # type: ignore[method-assign]
    return True
