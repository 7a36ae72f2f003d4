"""The pytest plugin end to end through pytester: ids, outcomes, skips, properties, reports.

Facts come from recorded probe output (no host is contacted): ``probe_host`` is replaced for
the in-process run, everything else (targets, parametrisation, verdicts, reports) is real.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped

from hrw_preflight.facts.model import HostFacts
from tests.junit_read import properties
from tests.linux_samples import LinuxHost
from tests.suite_runner import (
    LINUX_CHECKS,
    SECRET,
    WINDOWS_CHECKS,
    Facts,
    deselected_count,
    local_facts,
    local_inventory,
    run_suite,
    windows_sections,
)

pytest_plugins = ["pytester"]


@pytest.fixture
def suite(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> Callable[[Facts, list[str]], pytest.RunResult]:
    """Return a runner of the real scenario tests against recorded facts per host name."""

    def run(facts: Facts, args: list[str]) -> pytest.RunResult:
        return run_suite(pytester, monkeypatch, facts, args)

    return run


def junit(pytester: pytest.Pytester) -> JUnitXml:
    return JUnitXml.fromfile(str(pytester.path / "reports" / "latest" / "junit.xml"))


def test_ids_name_host_scenario_and_item_and_skips_say_why(
    suite: Callable[..., pytest.RunResult], pytester: pytest.Pytester
) -> None:
    result = suite(
        {"local": local_facts(LinuxHost(auto=False))},
        ["--hosts=local://", "-k", f"{LINUX_CHECKS} or HRW-G02", "-v"],
    )
    result.stdout.fnmatch_lines(
        [
            "*test_hardware_minimum?local:HRW-G02:memory? PASSED*",
            "*test_worker_processes?local:HRW-L01:manager? PASSED*",
            "*SKIPPED*Update Management is not enabled*",
        ]
    )
    selected = ("HRW-L01", "HRW-L02", "HRW-L03", "HRW-G02")
    deselected = deselected_count("linux", selected)
    result.assert_outcomes(passed=6, skipped=1, deselected=deselected)
    assert "test_healthservice" not in result.stdout.str()  # no Windows host, no Windows test


def test_failure_message_names_scenario_host_seen_expected_and_fix(
    suite: Callable[..., pytest.RunResult],
) -> None:
    result = suite(
        {"local": local_facts(LinuxHost(agent=False))}, ["--hosts=local://", "-k", "HRW-L02"]
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*HRW-L02 failed on local ?omsagent?: OMS Agent for Linux daemon is running",
            "*seen:*no omsagent process is running",
            "*expected:*",
            "*fix:*service_control restart*",
        ]
    )


def test_unreachable_host_errors_every_check_and_others_go_on(
    suite: Callable[..., pytest.RunResult], pytester: pytest.Pytester
) -> None:
    inventory = pytester.path / "inv.yml"
    inventory.write_text(
        "all:\n  hosts:\n    dead:\n      ansible_host: 192.0.2.1\n"
        "    alive:\n      ansible_connection: local\n"
    )
    dead = HostFacts("dead", "linux", connect_error="ssh failed: Connection timed out")
    result = suite(
        {"dead": dead, "alive": local_facts(LinuxHost())},
        [f"--ansible-inventory={inventory}", "--hosts=ansible://all", "-k", LINUX_CHECKS],
    )
    outcomes = result.parseoutcomes()
    assert outcomes["errors"] == 5 and outcomes["passed"] == 5 and "failed" not in outcomes
    cases = [c for s in junit(pytester) for c in s]
    dead_cases = [c for c in cases if "dead:" in c.name]
    assert dead_cases and all(isinstance(r, Error) for c in dead_cases for r in c.result)
    assert "Connection timed out" in str(dead_cases[0].result[0].message)


def test_junit_properties_html_evidence_and_no_secrets(
    suite: Callable[..., pytest.RunResult], pytester: pytest.Pytester
) -> None:
    inventory = pytester.path / "inv.yml"
    inventory.write_text(
        "all:\n  hosts:\n    win1:\n      ansible_host: 192.0.2.7\n"
        "      ansible_connection: winrm\n      ansible_user: svc\n"
        f"      ansible_password: '{SECRET}'\n"
    )
    result = suite(
        {"win1": HostFacts("win1", "windows", windows_sections(state="Stopped"))},
        [f"--ansible-inventory={inventory}", "--hosts=ansible://all", "-k", WINDOWS_CHECKS],
    )
    result.assert_outcomes(passed=10, failed=1)
    assert SECRET not in result.stdout.str()
    cases = {c.name: c for s in junit(pytester) for c in s}
    failed = cases["test_healthservice[win1:HRW-W01:HealthService]"]
    assert isinstance(failed.result[0], Failure)
    props = properties(failed)
    assert props == {
        "scenario_id": "HRW-W01",
        "host": "win1",
        "severity": "critical",
        "item": "HealthService",
        "outcome": "failed",
        # Windows does not read the extension yet.
        "worker_kind": "agent-based (extension-based unknown), place unknown",
    }
    assert not any(isinstance(r, Skipped) for c in cases.values() for r in c.result)
    # The worker kind per host: terminal line, HTML matrix, evidence.json.
    kind = "agent-based (extension-based unknown), place unknown"
    assert f"win1 [{kind}]: 1 failed, 10 passed" in result.stdout.str()
    record = json.loads((pytester.path / "reports" / "latest" / "evidence.json").read_text())
    assert record["hosts"]["win1"]["worker_kind"]["agent"] is True
    assert record["hosts"]["win1"]["worker_kind"]["text"] == kind
    fleet = (pytester.path / "reports" / "latest" / "report.html").read_text()
    # One kind for the whole fleet: said in the header, no column for it in the matrix.
    assert f"<dt>kinds of worker</dt><dd>1 {kind}</dd>" in fleet
    assert '<td class="kind">' not in fleet
    html = (pytester.path / "reports" / "latest" / "checks.html").read_text()
    assert f'<td class="kind">{kind}</td>' in html
    attached = [base64.b64decode(b).decode() for b in re.findall(r"base64,([A-Za-z0-9+/=]+)", html)]
    assert "probe output (win1)" in html and any("State Stopped" in a for a in attached)
    # Only the failed check carries its probe output; the passed ones are in evidence.json.
    assert attached and all("State Stopped" in a for a in attached)
    assert SECRET not in html and not any(SECRET in a for a in attached)
    assert SECRET not in (pytester.path / "reports" / "latest" / "junit.xml").read_text()


def test_two_runs_keep_two_report_folders(
    suite: Callable[..., pytest.RunResult], pytester: pytest.Pytester
) -> None:
    facts = {"local": local_facts(LinuxHost())}
    suite(facts, ["--hosts=local://", "-k", "HRW-L02"])
    suite(facts, ["--hosts=local://", "-k", "HRW-L02"])
    runs = [p for p in (pytester.path / "reports").iterdir() if not p.is_symlink()]
    assert len(runs) == 2 and all((p / "junit.xml").is_file() for p in runs)
    assert (pytester.path / "reports" / "latest").resolve() == max(runs).resolve()


def test_bad_host_input_stops_with_one_line(suite: Callable[..., pytest.RunResult]) -> None:
    result = suite({}, ["--hosts=gopher://x"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.startswith("ERROR")]
    assert len(errors) == 1 and "gopher" in errors[0]


def test_bad_override_in_inventory_stops_with_one_line(
    suite: Callable[[Facts, list[str]], pytest.RunResult], pytester: pytest.Pytester
) -> None:
    inventory = pytester.path / "inv.yml"
    inventory.write_text(
        "all:\n  hosts:\n    w1:\n      ansible_connection: local\n      hrw_endpoints: [a, b]\n"
    )
    result = suite({}, [f"--ansible-inventory={inventory}", "--hosts=ansible://all"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.startswith("ERROR")]
    assert len(errors) == 1 and "hrw_endpoints" in errors[0]


def test_collect_only_contacts_no_host(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    probed = pytester.path / "probed"

    def probe(target: object) -> HostFacts:
        probed.write_text("a probe ran")  # a file: the probe may run in another process
        return local_facts(LinuxHost())

    result = run_suite(pytester, monkeypatch, {"local": probe}, ["--hosts=local://", "--co", "-q"])
    assert result.ret == pytest.ExitCode.OK
    assert "local:HRW-L02:omsagent" in result.stdout.str()
    assert not probed.exists()


def test_checks_run_host_by_host_as_facts_arrive(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    inventory = local_inventory(pytester, "a", "b")
    facts = {name: HostFacts(name, "linux", local_facts(LinuxHost()).sections) for name in "ab"}
    result = run_suite(
        pytester,
        monkeypatch,
        facts,
        [f"--ansible-inventory={inventory}", "--hosts=ansible://all", "-k", LINUX_CHECKS, "-v"],
    )
    ran = re.findall(r"\[(a|b):HRW-L\d\d:[^\]]+\] (?:PASSED|FAILED|SKIPPED)", result.stdout.str())
    assert len(ran) == 2 * 5
    # All of one host's checks, then all of the other's (collection order would interleave).
    assert ran == sorted(ran, key=lambda host: host != ran[0])
