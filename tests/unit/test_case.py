"""A judged check's evidence text: masked first, then bounded."""

from __future__ import annotations

import html

import pytest

from hrw_preflight.facts.model import HostFacts, Section
from hrw_preflight.hosts.redact import Redactor
from hrw_preflight.hosts.selection import parse_hosts_option
from hrw_preflight.hosts.targets import HostDefaults
from hrw_preflight.report.evidence import CheckResult
from hrw_preflight.report.html_matrix import render_failures
from hrw_preflight.run.case import EVIDENCE_CHARS, Case
from hrw_preflight.verdicts import Verdict
from hrw_preflight.verdicts.catalogue import load_catalogue
from hrw_preflight.verdicts.error_fix import FIXES, error_cause

SECRET = "Sw0rdfish-Secret"


def case_with_raw(raw: str) -> Case:
    [target] = parse_hosts_option(["ssh://root@h1"], [], HostDefaults())
    facts = HostFacts("h1", "linux", {"clock": Section("clock", {"epoch": 1}, raw=raw)})
    verdict = Verdict("passed", "clock read", sections=("clock",))
    scenario = load_catalogue().get("HRW-I03")
    return Case(target, scenario, "clock", facts, verdict, Redactor([SECRET]))


def test_a_secret_across_the_cut_is_masked_not_halved() -> None:
    header = len(case_with_raw("z").evidence) - 1
    raw = "x" * (EVIDENCE_CHARS - header - 8) + SECRET + "y" * 100  # unmasked, it straddles
    evidence, cut = case_with_raw(raw).report_evidence
    assert cut and SECRET[:2] not in evidence and "***" in evidence
    assert evidence.endswith("more chars not kept)")


def test_the_report_cut_is_the_only_cut() -> None:
    # A second, larger limit (16,000 characters per section) used to cut the evidence first,
    # and its marker never reached a report, which keeps 8,000.
    raw = "a" * 20_000 + "THE-END"
    case = case_with_raw(raw)
    assert case.evidence.endswith("THE-END")
    evidence, cut = case.report_evidence
    assert cut and evidence.count("more chars") == 1
    assert evidence.endswith(f"... ({len(case.evidence) - EVIDENCE_CHARS} more chars not kept)")


def test_sections_are_masked_and_headed() -> None:
    evidence = case_with_raw(f"line one\npassword={SECRET}\n").evidence
    assert evidence.startswith("[clock] taken ") and "(read)" in evidence
    assert SECRET not in evidence and "password=***" in evidence


def case_with_verdict(verdict: Verdict, scenario_id: str = "HRW-G01") -> Case:
    [target] = parse_hosts_option(["ssh://root@h1"], [], HostDefaults())
    facts = HostFacts("h1", "linux", connect_error=None)
    scenario = load_catalogue().get(scenario_id)
    return Case(target, scenario, "agentsvc", facts, verdict, Redactor([SECRET]))


@pytest.mark.parametrize(
    ("reason", "cause"),
    [
        (
            "host unreachable: ssh failed: connect to host 10.0.0.5 port 22: No route to host",
            "reachability",
        ),
        ("host unreachable: ssh failed: Connection refused", "reachability"),
        ("host unreachable: ssh failed: Host key verification failed.", "host-key"),
        (
            "host unreachable: ssh failed: WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!",
            "host-key",
        ),
        ("host unreachable: ssh failed: root@h1: Permission denied (publickey).", "credentials"),
        (
            "host unreachable: InvalidCredentialsError: the specified credentials were rejected",
            "credentials",
        ),
        ("could not read omsconfig_log: permission denied reading /var/opt/x.log", "permission"),
        (
            "login failed: the WinRM service rejected the credentials: check the password",
            "credentials",
        ),
        ("could not read network: openssl is not installed on the host, so ...", "missing-tool"),
        (
            "host unreachable: no answer within 5 s (the host accepted the connection ...)",
            "timeout",
        ),
        ("malformed facts (KeyError: 'tcp')", "unreadable"),
    ],
)
def test_an_errors_fix_says_how_to_make_the_check_possible(reason: str, cause: str) -> None:
    assert error_cause(reason) == cause
    message = case_with_verdict(Verdict("error", reason)).explain()
    scenario = load_catalogue().get("HRW-G01")
    # The scenario's own remediation (open the firewall) is not the fix for a check not made.
    assert scenario.remediation not in message
    assert f"  fix:      {FIXES[cause]}" in message


def test_a_failure_keeps_the_scenarios_remediation() -> None:
    verdict = Verdict("failed", "TCP 443 to x: timeout", "TCP 443 connects")
    message = case_with_verdict(verdict).explain()
    assert load_catalogue().get("HRW-G01").remediation in message


def test_html_failures_table_gives_an_error_its_own_fix() -> None:
    scenarios = load_catalogue().scenarios

    def check(host: str, outcome: str, reason: str) -> CheckResult:
        return CheckResult("t", host, "HRW-G01", "agentsvc", "critical", outcome, reason)

    checks = [
        check("h1", "error", "host unreachable: ssh failed: Connection refused"),
        check("h2", "failed", "TCP 443 to x: timeout"),
    ]
    page = render_failures(checks, scenarios, lambda text: text)
    remediation = html.escape(load_catalogue().get("HRW-G01").remediation)
    error_row, failed_row = page.split("<tr><td>h1")[1], page.split("<tr><td>h2")[1]
    assert html.escape(FIXES["reachability"]) in error_row.split("</tr>")[0]
    assert remediation not in error_row.split("</tr>")[0]
    assert remediation in failed_row.split("</tr>")[0]
