"""Checks that do not apply are reported as skipped without the run protocol, and read
exactly as the protocol's skips: terminal, JUnit, evidence.json."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast

import pytest

from hrw_preflight.run.quick_skip import split_quick
from tests.junit_read import cases, properties
from tests.linux_samples import LinuxHost
from tests.suite_runner import latest, load_evidence, local_facts, run_suite

pytest_plugins = ["pytester"]


def steps(names: str, quick: str) -> list[tuple[str, str | None, bool]]:
    items = cast(list[pytest.Item], list(names))
    pairs = [(item, items[i + 1] if i + 1 < len(items) else None) for i, item in enumerate(items)]
    found = split_quick(pairs, lambda item: cast(str, item) in quick)
    return [(cast(str, i), cast(str | None, n), q) for i, n, q in found]


def test_full_items_get_the_next_full_item_and_quick_ones_follow_in_order() -> None:
    assert steps("aBcDEf", quick="BDE") == [
        ("a", "c", False),
        ("B", None, True),
        ("c", "f", False),
        ("D", None, True),
        ("E", None, True),
        ("f", None, False),
    ]


def test_quick_items_at_either_end() -> None:
    assert steps("ABcD", quick="ABD") == [
        ("A", None, True),
        ("B", None, True),
        ("c", None, False),
        ("D", None, True),
    ]
    assert steps("AB", quick="AB") == [("A", None, True), ("B", None, True)]
    assert steps("", quick="") == []


def _skips(folder: Path) -> dict[str, tuple[str, dict[str, str]]]:
    found = {}
    for case in cases(str(folder / "junit.xml")):
        results = list(case.result)
        if results and type(results[0]).__name__ == "Skipped":
            found[str(case.name)] = (str(results[0].message), properties(case))
    return found


def _record_skips(folder: Path) -> dict[str, Any]:
    record = load_evidence(folder)
    return {
        c["nodeid"]: {k: v for k, v in c.items() if k != "duration_s"}
        for c in record["checks"]
        if c["outcome"] == "skipped"
    }


def test_quick_skips_read_as_the_protocols_skips(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    facts = {"local": local_facts(LinuxHost(auto=False))}
    # --hrw-parallel 0 keeps pytest's own loop: every skip goes through the fixture.
    slow = run_suite(pytester, monkeypatch, facts, ["--hosts=local://", "--hrw-parallel=0"])
    slow_junit, slow_record = _skips(latest(pytester)), _record_skips(latest(pytester))
    quick = run_suite(pytester, monkeypatch, facts, ["--hosts=local://", "--setup-show"])
    assert quick.parseoutcomes() == slow.parseoutcomes()
    assert len(slow_junit) >= 5  # the extension's checks and the user worker, at least
    assert _skips(latest(pytester)) == slow_junit
    assert _record_skips(latest(pytester)) == slow_record
    # Same reasons in the terminal's short summary (-rs)...
    reasons = sorted(re.findall(r"^SKIPPED \[\d+\] (.*)$", slow.stdout.str(), re.M))
    assert sorted(re.findall(r"^SKIPPED \[\d+\] (.*)$", quick.stdout.str(), re.M)) == reasons
    # ... and really without the fixture: --setup-show lists hrw_case for the others only.
    outcomes = quick.parseoutcomes()
    set_up = len(re.findall(r"SETUP +F hrw_case\[", quick.stdout.str()))
    assert set_up == sum(outcomes.get(k, 0) for k in ("passed", "failed", "errors"))


def test_a_users_own_marks_keep_the_protocol(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeconftest(
        "import pytest\n"
        "def pytest_collection_modifyitems(items):\n"
        "    for item in items:\n"
        "        item.add_marker(pytest.mark.usefixtures('tmp_path'))\n"
    )
    facts = {"local": local_facts(LinuxHost(auto=False))}
    result = run_suite(pytester, monkeypatch, facts, ["--hosts=local://", "--setup-show"])
    # Every check, skipped or not, went through set-up (the user's fixture ran for each).
    outcomes = result.parseoutcomes()
    set_up = re.findall(r"SETUP +F hrw_case\[", result.stdout.str())
    assert outcomes.get("skipped", 0) > 0
    assert len(set_up) == sum(outcomes.get(k, 0) for k in ("passed", "failed", "skipped", "errors"))
