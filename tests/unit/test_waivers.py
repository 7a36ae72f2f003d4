"""Waivers: parsing (valid, malformed, expired) and their effect on a run's reports."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from junitparser import Failure, JUnitXml, Skipped

from hrw_preflight.facts.model import HostFacts
from hrw_preflight.hosts.errors import ConfigError
from hrw_preflight.report.evidence import schema_errors
from hrw_preflight.report.verify import verify_bundle
from hrw_preflight.report.waivers import Waiver, load_waivers, parse_waivers
from tests.junit_read import properties as props
from tests.suite_runner import (
    WINDOWS_CHECKS,
    latest,
    load_evidence,
    run_suite,
    windows_inventory,
    windows_sections,
)

pytest_plugins = ["pytester"]
TODAY = dt.date(2026, 6, 1)
KNOWN = {"HRW-W01", "HRW-G03"}
ENTRY = (
    "- scenario: HRW-W01\n  hosts: 'win*'\n  justification: agent replaced next sprint\n"
    "  owner: ops@example.com\n  expires: {expires}\n"
)


def waiver_file(pytester: pytest.Pytester, expires: str) -> Path:
    """Write a waiver file for HRW-W01 on win* expiring on ``expires``; return its path."""
    path = pytester.path / "waivers.yml"
    path.write_text(ENTRY.format(expires=expires))
    return path


def test_valid_waiver_file_parses_and_matches_by_pattern() -> None:
    waivers = parse_waivers(ENTRY.format(expires="2026-06-01"), "w.yml", KNOWN, TODAY)
    [waiver] = waivers.entries
    assert waiver == Waiver(
        "HRW-W01", "win*", "agent replaced next sprint", "ops@example.com", dt.date(2026, 6, 1)
    )
    assert waivers.active_for("HRW-W01", "win1") is waiver  # the expiry day still counts
    assert waivers.active_for("HRW-W01", "linux1") is None
    assert waivers.active_for("HRW-G03", "win1") is None
    assert waivers.expired() == []
    assert parse_waivers("", "w.yml", KNOWN, TODAY).entries == ()


def test_expired_waiver_no_longer_applies() -> None:
    waivers = parse_waivers(ENTRY.format(expires="'2026-05-31'"), "w.yml", KNOWN, TODAY)
    assert waivers.active_for("HRW-W01", "win1") is None
    expired = waivers.expired_for("HRW-W01", "win1")
    assert expired is not None and "expired on 2026-05-31" in expired.expired_text()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("scenario: HRW-W01\n", "expected a YAML list of waivers"),
        ("- [unclosed\n", "not valid YAML at line"),
        ("- just a string\n", "each waiver must be a mapping"),
        (
            "- {scenario: HRW-W01, hosts: '*', owner: me, expires: 2026-01-01}\n",
            "missing keys ['justification']",
        ),
        (ENTRY.format(expires="2026-01-01") + "  note: extra\n", "unknown keys ['note']"),
        (
            ENTRY.format(expires="31/12/2026"),
            "'expires' must be a date YYYY-MM-DD, got '31/12/2026'",
        ),
        (ENTRY.format(expires="2026-02-30"), "day is out of range for month"),
        (ENTRY.format(expires="2026-01-01T10:00:00"), "not a date and time"),
        (ENTRY.format(expires="2026-01-01").replace("HRW-W01", "HRW-X99"), "unknown scenario"),
        (ENTRY.format(expires="2026-01-01").replace("'win*'", "''"), "'hosts' must be a non-empty"),
    ],
)
def test_malformed_waiver_file_is_one_config_error_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_waivers(text, "w.yml", KNOWN, TODAY)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert "YYYY-MM-DD" in str(caught.value) or "YYYY" not in message
    assert str(caught.value).startswith("w.yml")


def test_missing_waiver_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_waivers(str(tmp_path / "nope.yml"))


def _run_stopped_service(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, waivers: Path
) -> pytest.RunResult:
    inventory = windows_inventory(pytester)
    return run_suite(
        pytester,
        monkeypatch,
        {"win1": HostFacts("win1", "windows", windows_sections(state="Stopped"))},
        [
            f"--ansible-inventory={inventory}",
            "--hosts=ansible://all",
            "-k",
            WINDOWS_CHECKS,
            f"--hrw-waivers={waivers}",
            "-rx",
        ],
    )


def test_valid_waiver_reports_waived_never_passed(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run_stopped_service(pytester, monkeypatch, waiver_file(pytester, "2999-12-31"))
    result.assert_outcomes(passed=10, xfailed=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "*waivers: 1 failure(s) waived*",
            "*WAIVED win1 HRW-W01 ?HealthService?: agent replaced next sprint",
            "*XFAIL*HRW-W01*waived: agent replaced next sprint*",
        ]
    )
    folder = latest(pytester)
    record = load_evidence(folder)
    assert schema_errors(record) == [] and record["summary"]["waived"] == 1
    [check] = [c for c in record["checks"] if c["scenario_id"] == "HRW-W01"]
    assert check["outcome"] == "waived" and check["waiver"]["justification"] == (
        "agent replaced next sprint"
    )
    assert "State Stopped" in check["evidence"] and "seen:" in check["reason"]
    assert record["waivers"]["entries"][0]["applied"] == 1
    cases = {c.name: c for s in JUnitXml.fromfile(str(folder / "junit.xml")) for c in s}
    case = cases["test_healthservice[win1:HRW-W01:HealthService]"]
    [skipped] = case.result
    assert isinstance(skipped, Skipped) and "waived: agent replaced next sprint" in str(
        skipped.message
    )
    assert props(case)["outcome"] == "waived"
    page = (folder / "report.html").read_text()
    assert "<h2>Waived (1)</h2>" in page and 'class="waived"' in page
    assert verify_bundle(folder).ok


def test_expired_waiver_leaves_the_failure_and_says_so(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run_stopped_service(pytester, monkeypatch, waiver_file(pytester, "2020-01-01"))
    result.assert_outcomes(passed=10, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*EXPIRED waiver for HRW-W01 on win* (owner ops@example.com) expired on 2020-01-01*",
            "*hrw-preflight waiver*",
            "*expired on 2020-01-01 and no longer applies*",
        ]
    )
    folder = latest(pytester)
    record = load_evidence(folder)
    [check] = [c for c in record["checks"] if c["scenario_id"] == "HRW-W01"]
    assert check["outcome"] == "failed" and check["waiver"] is None
    assert check["expired_waiver"]["status"] == "expired"
    assert (
        record["waivers"]["entries"][0] | {"applied": 0, "blocked": 1}
        == (record["waivers"]["entries"][0])
    )
    cases = [c for s in JUnitXml.fromfile(str(folder / "junit.xml")) for c in s]
    assert any(isinstance(r, Failure) for c in cases for r in c.result)
    page = (folder / "report.html").read_text()
    assert "EXPIRED: waiver for HRW-W01" in page and "expired on 2020-01-01: not applied" in page


def test_malformed_waiver_file_stops_the_run_with_one_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = pytester.path / "waivers.yml"
    bad.write_text(ENTRY.format(expires="next week"))
    result = _run_stopped_service(pytester, monkeypatch, bad)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.startswith("ERROR")]
    assert len(errors) == 1 and "waiver 1" in errors[0] and "YYYY-MM-DD" in errors[0]
    assert not (pytester.path / "reports").exists()  # stopped before any run folder
