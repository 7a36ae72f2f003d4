"""HRW-L04, Microsoft's DSC health test, item by item: a pass, a fail with Microsoft's own
message and fix, and an error when the facts it needs cannot be read; skips where
Microsoft's test returns healthy without testing."""

from __future__ import annotations

import pytest

from hrw_preflight.facts.linux import probe as linux
from hrw_preflight.facts.model import HostFacts, Section
from hrw_preflight.facts.params import ProbeParams
from hrw_preflight.verdicts import Settings, Verdict, judge
from hrw_preflight.verdicts.catalogue import load_catalogue
from hrw_preflight.verdicts.certs import load_trusted_cas
from hrw_preflight.verdicts.dsc_health import ITEMS
from tests.linux_samples import BOUNDARY, STATE, VERSION, WS, LinuxHost, Out, current_mof

OTHER_WS = "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"
MODULE = (
    "/opt/microsoft/omsconfig/modules/nxOMSAutomationWorker/DSCResources/"
    "MSFT_nxOMSAutomationWorkerResource/automationworker"
)
SETTINGS = Settings(trusted=load_trusted_cas([]))


def manager(
    version: str = VERSION, ws: str = WS, layout: str = "3.x/worker", pid: int = 9001
) -> str:
    """Return a ps line of a worker manager run by nxautomation (uid 998)."""
    return (
        f" {pid} 998 nxautomation python3 {MODULE}/{layout}/main.py {STATE}/oms.conf "
        f"rworkspace:{ws} {version}"
    )


def facts_of(host: LinuxHost, **replace: Section) -> HostFacts:
    sections = linux.parse_facts(Out(host.facts_output()), ProbeParams(), boundary=BOUNDARY)
    sections.update(replace)
    return HostFacts("h", "linux", sections)


def verdict(item: str, host: LinuxHost, **replace: Section) -> Verdict:
    return judge("HRW-L04", item, facts_of(host, **replace), SETTINGS)


def outcomes(host: LinuxHost, **replace: Section) -> dict[str, str]:
    return {item: verdict(item, host, **replace).outcome for item in ITEMS}


def test_catalogue_items_are_the_criteria() -> None:
    scenario = load_catalogue().get("HRW-L04")
    assert scenario.items == ITEMS and scenario.platform == "linux"
    sources = " ".join(r.title for r in scenario.references)
    assert "Test_Marshall" in sources and "UM_Linux_Troubleshooter" in sources
    assert "service_control restart" in scenario.remediation
    assert "re-register" in scenario.remediation


def test_healthy_worker_passes_every_criterion_that_applies() -> None:
    seen = outcomes(LinuxHost())
    assert seen.pop("no-workers-without-solution") == "skipped"
    assert set(seen.values()) == {"passed"}, seen


def test_a_manager_of_either_layout_is_the_manager() -> None:
    """The article's layout is what Microsoft's Python 2 DSC script starts, 3.x its Python 3."""
    article = LinuxHost()  # the samples' manager runs from automationworker/worker/
    assert verdict("manager-version", article).outcome == "passed"
    three_x = LinuxHost(agent=False, extra_ps=[manager(layout="3.x/worker")])
    assert verdict("manager-version", three_x).outcome == "passed"


@pytest.mark.parametrize(
    ("host", "item", "message"),
    [
        (
            LinuxHost(extra_ps=[manager(ws=OTHER_WS)]),
            "stray-workspace",
            "process started by other workspaces detected",
        ),
        (LinuxHost(oms_conf_missing=True), "oms-conf", "oms.conf file not found"),
        (
            LinuxHost(agent=False, extra_ps=[manager(version="1.4")]),
            "no-1.4-manager",
            "an older version of Hybrid Worker was found",
        ),
        (
            LinuxHost(agent=False),
            "manager-version",
            "worker manager isn't running or is not latest",
        ),
        (
            LinuxHost(extra_ps=[manager()]),
            "manager-version",
            "worker manager isn't running or is not latest",
        ),
        (
            LinuxHost(agent=False, extra_ps=[manager(version="1.6.2.0")]),
            "manager-version",
            "worker manager isn't running or is not latest",
        ),
        (
            LinuxHost(mof=current_mof(updates=False, automation=False)),
            "no-workers-without-solution",
            "worker or manager is running when no solution is enabled",
        ),
        (
            LinuxHost(mof=current_mof(updates=True, automation=False)),
            "oms-conf-consistent",
            "oms.conf differs from configuration mof",
        ),
        (
            LinuxHost(auto=False, mof=current_mof(updates=True, automation=True)),
            "auto-worker-conf",
            "auto register is enabled but registration file is absent",
        ),
        (
            LinuxHost(registered_cert="before-rotation"),
            "cert-thumbprint",
            "certificate mismatch for auto registered worker",
        ),
        (
            LinuxHost(cert="missing"),
            "cert-thumbprint",
            "certificate mismatch for auto registered worker",
        ),
    ],
    ids=[
        "stray",
        "oms-conf-missing",
        "manager-1.4",
        "no-manager",
        "two-managers",
        "old-manager",
        "workers-without-solution",
        "omsconf-inconsistent",
        "worker-conf-absent",
        "cert-rotated",
        "cert-missing",
    ],
)
def test_each_criterion_fails_with_microsofts_message_and_the_fix(
    host: LinuxHost, item: str, message: str
) -> None:
    result = verdict(item, host)
    assert result.outcome == "failed", result
    assert f"Test_Marshall returned [-1]: {message}" in result.seen
    fix = "re-register" if item == "cert-thumbprint" else "service_control restart"
    assert fix in result.seen and result.expected


def test_a_fault_fails_only_its_own_criteria() -> None:
    rotated = outcomes(LinuxHost(registered_cert="before-rotation"))
    assert {i for i, o in rotated.items() if o == "failed"} == {"cert-thumbprint"}
    stray = outcomes(LinuxHost(extra_ps=[manager(ws=OTHER_WS)]))
    assert {i for i, o in stray.items() if o == "failed"} == {"stray-workspace"}
    two = outcomes(LinuxHost(extra_ps=[manager()]))
    assert {i for i, o in two.items() if o == "failed"} == {"manager-version"}


def test_no_solution_enabled_and_nothing_running_passes_criterion_5() -> None:
    host = LinuxHost(agent=False, auto=False, user=False)
    assert verdict("no-workers-without-solution", host).outcome == "passed"
    skipped = verdict("manager-version", host)
    assert skipped.outcome == "skipped" and "no solution is enabled" in skipped.seen


@pytest.mark.parametrize("state", ["missing", "denied"])
def test_unreadable_configuration_is_an_error_for_the_items_that_need_it(state: str) -> None:
    seen = outcomes(LinuxHost(mof_state=state))
    needs = {
        "manager-version",
        "no-workers-without-solution",
        "oms-conf-consistent",
        "auto-worker-conf",
        "cert-thumbprint",
    }
    assert {i for i, o in seen.items() if o == "error"} == needs
    # The others are judged for the primary workspace, and say the configuration was unread.
    result = verdict("stray-workspace", LinuxHost(mof_state=state))
    assert result.outcome == "passed" and "judged for the primary workspace" in result.seen
    missing = verdict("oms-conf-consistent", LinuxHost(mof_state="missing"))
    assert "Current.mof does not exist" in missing.seen


def test_configuration_without_the_worker_resource_is_an_error() -> None:
    host = LinuxHost(mof="instance of MSFT_nxFileResource\n{\n};\n".encode("utf-16-le"))
    result = verdict("manager-version", host)
    assert result.outcome == "error" and "MSFT_nxOMSAutomationWorkerResource" in result.seen


def test_unreadable_module_version_or_certificate_is_an_error() -> None:
    assert verdict("manager-version", LinuxHost(version_missing=True)).outcome == "error"
    assert verdict("cert-thumbprint", LinuxHost(cert="denied")).outcome == "error"
    no_conf = LinuxHost(auto=False, mof=current_mof(updates=True, automation=True))
    assert verdict("cert-thumbprint", no_conf).outcome == "error"


def test_unreadable_processes_or_worker_are_errors_for_every_item() -> None:
    for name in ("processes", "worker"):
        broken = {name: Section.failed(name, "permission denied")}
        assert set(outcomes(LinuxHost(), **broken).values()) == {"error"}, name


def test_microsofts_no_test_cases_are_skips_with_the_reason() -> None:
    other = outcomes(LinuxHost(mof=current_mof(ws=OTHER_WS)))
    assert set(other.values()) == {"skipped"}
    reason = verdict("oms-conf", LinuxHost(mof=current_mof(ws=OTHER_WS))).seen
    assert "not the primary workspace" in reason
    no_user = LinuxHost(nxautomation_uid=None)
    assert set(outcomes(no_user).values()) == {"skipped"}
    assert "nxautomation does not exist" in verdict("oms-conf", no_user).seen
    updates_off = outcomes(LinuxHost(auto=False))
    assert updates_off["auto-worker-conf"] == updates_off["cert-thumbprint"] == "skipped"
