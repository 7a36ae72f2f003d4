"""The severity gate (--hrw-fail-on): exit codes count only failures at or above it."""

from __future__ import annotations

import pytest
from junitparser import Failure, JUnitXml

from hrw_preflight.hosts.errors import ConfigError
from hrw_preflight.report.gate import apply_gate, counts, parse_fail_on
from tests.linux_samples import LinuxHost
from tests.suite_runner import latest, load_evidence, local_facts, run_suite

pytest_plugins = ["pytester"]
FAILED, OK = int(pytest.ExitCode.TESTS_FAILED), int(pytest.ExitCode.OK)


def test_parse_fail_on_accepts_severities_and_rejects_the_rest() -> None:
    assert parse_fail_on(None) is None and parse_fail_on("HIGH") == "high"
    with pytest.raises(ConfigError, match="use one of low, medium, high, critical"):
        parse_fail_on("severe")


def test_counts_ranks_severities_and_always_counts_unranked_failures() -> None:
    assert counts("critical", "high") and counts("high", "high")
    assert not counts("medium", "high") and not counts("low", "medium")
    assert counts(None, "critical") and counts("medium", None)


def test_apply_gate_turns_a_failed_run_green_only_without_counted_failures() -> None:
    medium = [("failed", "medium"), ("error", "low"), ("passed", "critical")]
    assert apply_gate(FAILED, medium, "high").exit == OK
    gate = apply_gate(FAILED, [*medium, ("error", "critical")], "high")
    assert (gate.exit, gate.counted, gate.ignored) == (FAILED, 1, 2)
    assert apply_gate(FAILED, medium, None).exit == FAILED  # default: everything counts
    assert apply_gate(FAILED, [("waived", "critical")], "low").exit == OK
    interrupted = int(pytest.ExitCode.INTERRUPTED)
    assert apply_gate(interrupted, medium, "critical").exit == interrupted


def _run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, host: LinuxHost, *args: str
) -> pytest.RunResult:
    return run_suite(
        pytester,
        monkeypatch,
        {"local": local_facts(host)},
        ["--hosts=local://", "-k", "HRW-G03 or HRW-L02", *args],
    )


def test_medium_failure_fails_by_default_and_passes_the_high_gate(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = LinuxHost(load=8.0)  # HRW-G03 (medium) fails, HRW-L02 (critical) passes
    result = _run(pytester, monkeypatch, loaded)
    result.assert_outcomes(passed=2, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result = _run(pytester, monkeypatch, loaded, "--hrw-fail-on", "high")
    result.assert_outcomes(passed=2, failed=1)  # the report still shows the failure
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        ["*gate --hrw-fail-on high: 0 failure(s) counted, 1 below high ignored; exit 0*"]
    )
    record = load_evidence(latest(pytester))
    assert record["gate"] == {
        "fail_on": "high",
        "counted": 0,
        "ignored": 1,
        "pytest_exit": 1,
        "exit": 0,
    }
    assert record["summary"]["failed"] == 1 and record["status"] == "complete"
    cases = [c for s in JUnitXml.fromfile(str(latest(pytester) / "junit.xml")) for c in s]
    assert sum(isinstance(r, Failure) for c in cases for r in c.result) == 1
    assert (
        "Exit code counts only failures and errors of severity high and above"
        in (latest(pytester) / "report.html").read_text()
    )
    result = _run(pytester, monkeypatch, loaded, "--hrw-fail-on", "medium")
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_critical_failure_fails_every_gate(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run(pytester, monkeypatch, LinuxHost(agent=False), "--hrw-fail-on", "critical")
    result.assert_outcomes(passed=2, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert load_evidence(latest(pytester))["gate"]["counted"] == 1


def test_unknown_severity_is_a_usage_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run(pytester, monkeypatch, LinuxHost(), "--hrw-fail-on", "severe")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.startswith("ERROR")]
    assert len(errors) == 1 and "--hrw-fail-on 'severe'" in errors[0]
