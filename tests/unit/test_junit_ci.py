"""junit.xml as CI servers read it (Azure DevOps PublishTestResults, GitLab): classname is
the host, names are unique per host/scenario/item, properties carry the outcome."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped

from hrw_preflight.facts.model import HostFacts
from hrw_preflight.hosts.redact import Redactor
from hrw_preflight.report.evidence_plugin import rewrite_junit
from tests.junit_read import properties as props
from tests.linux_samples import LinuxHost
from tests.suite_runner import (
    LINUX_CHECKS,
    SECRET,
    latest,
    local_facts,
    run_suite,
    windows_sections,
)

pytest_plugins = ["pytester"]


def fleet_run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *args: str) -> JUnitXml:
    """Run a Linux host with a stopped agent, a dead host and a Windows host with a waived
    failure; return the parsed junit.xml."""
    inventory = pytester.path / "inv.yml"
    inventory.write_text(
        "all:\n  hosts:\n    lin1:\n      ansible_connection: local\n"
        "    dead:\n      ansible_host: 192.0.2.1\n"
        "    win1:\n      ansible_host: 192.0.2.7\n      ansible_connection: winrm\n"
        f"      ansible_user: svc\n      ansible_password: '{SECRET}'\n"
    )
    waivers = pytester.path / "waivers.yml"
    waivers.write_text(
        "- {scenario: HRW-W01, hosts: win1, justification: decommissioned soon,"
        " owner: ops, expires: 2999-01-01}\n"
    )
    facts = {
        "lin1": local_facts(LinuxHost(agent=False, auto=False)),
        "dead": HostFacts("dead", "linux", connect_error="ssh failed: No route to host"),
        "win1": HostFacts("win1", "windows", windows_sections(state="Stopped")),
    }
    run_suite(
        pytester,
        monkeypatch,
        facts,
        [
            f"--ansible-inventory={inventory}",
            "--hosts=ansible://all",
            f"--hrw-waivers={waivers}",
            "-k",
            f"{LINUX_CHECKS} or HRW-W01",
            *args,
        ],
    )
    return JUnitXml.fromfile(str(latest(pytester) / "junit.xml"))


@pytest.mark.parametrize("family", ["xunit1", "xunit2"])
def test_classname_is_the_host_and_every_case_is_unique_and_labelled(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, family: str
) -> None:
    xml = fleet_run(pytester, monkeypatch, "-o", f"junit_family={family}")
    cases = [c for suite in xml for c in suite]
    assert len(cases) == 11
    keys = Counter((c.classname, c.name) for c in cases)
    assert max(keys.values()) == 1  # unique per host, scenario and item
    for case in cases:
        p = props(case)
        assert case.classname == p["host"]
        assert p["scenario_id"] in case.name and p["item"] in case.name
        assert p["host"] in case.name and p["severity"] in ("critical", "high")
    kinds = {
        (c.classname, props(c)["scenario_id"], props(c)["item"]): props(c)["outcome"] for c in cases
    }
    assert kinds[("lin1", "HRW-L02", "omsagent")] == "failed"
    assert kinds[("lin1", "HRW-L01", "auto-registered")] == "skipped"
    assert kinds[("dead", "HRW-L02", "omsagent")] == "error"
    assert kinds[("win1", "HRW-W01", "HealthService")] == "waived"
    results = {(c.classname, props(c)["scenario_id"], props(c)["item"]): c.result for c in cases}
    [failure] = results[("lin1", "HRW-L02", "omsagent")]
    assert isinstance(failure, Failure) and "HRW-L02 failed on lin1" in str(failure.message)
    [error] = results[("dead", "HRW-L02", "omsagent")]
    assert isinstance(error, Error) and "No route to host" in str(error.message)
    [waived] = results[("win1", "HRW-W01", "HealthService")]
    assert isinstance(waived, Skipped) and str(waived.message).startswith(
        "waived: decommissioned soon (owner ops, expires 2999-01-01"
    )
    assert SECRET not in (latest(pytester) / "junit.xml").read_text()


def test_rewrite_keeps_non_check_cases_and_redacts(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">'
        '<testcase classname="test_x" name="test_plain"><failure message="token=abc">'
        "password=hunter2</failure></testcase>"
        '<testcase classname="test_linux" name="test_a[h1:HRW-L02:omsagent]"><properties>'
        '<property name="host" value="h1"/></properties></testcase></testsuite></testsuites>'
    )
    rewrite_junit(path, Redactor())
    cases = [c for s in JUnitXml.fromfile(str(path)) for c in s]
    assert [c.classname for c in cases] == ["test_x", "h1"]
    text = path.read_text()
    assert "hunter2" not in text and "abc" not in text and 'message="token=***"' in text
