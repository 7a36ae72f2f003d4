"""The fleet page (report.html) from a record: rows grouped by outcome pattern, failures
grouped by scenario with the evidence of the first few, unreachable hosts once."""

from __future__ import annotations

import re
from typing import Any

from hrw_preflight.report.fleet_page import EVIDENCE_ROWS, host_groups, render_fleet_page
from hrw_preflight.verdicts.catalogue import load_catalogue


def _check(host: str, scenario: str, outcome: str, **extra: Any) -> dict[str, Any]:
    reason, evidence = f"{outcome} on {host}", f"EVID {host} {scenario}"
    return {"host": host, "scenario_id": scenario, "item": "i", "outcome": outcome,
            "reason": reason, "evidence": evidence, **extra}  # fmt: skip


def _record(checks: list[dict[str, Any]], hosts: dict[str, Any]) -> dict[str, Any]:
    return {"run_id": "r1", "status": "complete", "operator": {}, "hosts": hosts,
            "checks": checks, "summary": {}}  # fmt: skip


def test_hosts_with_the_same_outcomes_share_a_row_worst_first_in_natural_order() -> None:
    checks = [_check(f"h{i}", "HRW-L02", "failed" if i % 5 == 0 else "passed") for i in range(12)]
    checks += [_check(f"h{i}", "HRW-L03", "passed") for i in range(12)]
    groups = host_groups(checks, {f"h{i}": {} for i in range(12)}, ["HRW-L02", "HRW-L03"])
    assert [(g.pattern, g.hosts) for g in groups] == [
        (("failed", "passed"), ["h0", "h5", "h10"]),
        (("passed", "passed"), ["h1", "h2", "h3", "h4", "h6", "h7", "h8", "h9", "h11"]),
    ]


def test_failures_show_evidence_for_the_first_rows_and_unreachable_hosts_once() -> None:
    n = EVIDENCE_ROWS + 10
    checks = [_check(f"h{i}", "HRW-L02", "failed") for i in range(n)]
    checks += [_check("down", s, "error") for s in ("HRW-L02", "HRW-L03")]
    hosts: dict[str, Any] = {f"h{i}": {"platform": "linux"} for i in range(n)}
    hosts["down"] = {"platform": "linux", "connect_error": "ssh: Connection timed out"}
    page = render_fleet_page(_record(checks, hosts), load_catalogue().scenarios, [], str)
    assert "<title>hrw-preflight run r1</title>" in page
    assert page.count("<pre>") == EVIDENCE_ROWS
    assert f"Evidence shown for the first {EVIDENCE_ROWS} of {n};" in page
    assert page.count('<tr class="c" data-o="failed"') == n  # every failure is listed
    assert page.count("ssh: Connection timed out") == 1
    assert "error on down" not in page  # its checks' errors are the one line above
    assert f"<h2>Failures and errors ({n} failed, 2 error)</h2>" in page
    assert sorted(int(x) for x in re.findall(r'<tr data-n="(\d+)"', page)) == [1, n]
