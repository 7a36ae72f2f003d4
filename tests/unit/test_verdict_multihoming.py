"""HRW-G05, one workspace per agent (Microsoft's MultiHomingCheck), on recorded facts."""

from __future__ import annotations

import dataclasses

import pytest

from hrw_preflight.facts.linux import probe as linux
from hrw_preflight.facts.model import HostFacts
from hrw_preflight.facts.params import ProbeParams
from hrw_preflight.verdicts import Settings, Verdict, judge
from tests.linux_samples import WS, LinuxHost, Out
from tests.windows_recorded import load_recorded

OTHER = "0b5a9f7e-3c1d-4e2f-8a6b-9c0d1e2f3a4b"
SETTINGS = Settings(trusted=None)  # type: ignore[arg-type]  # G05 reads no certificates


def on_linux(host: LinuxHost) -> Verdict:
    sections = linux.parse_facts(
        Out(host.facts_output()), ProbeParams(), host.window(), boundary=host.boundary
    )
    return judge("HRW-G05", "workspaces", HostFacts("h", "linux", sections), SETTINGS)


def on_windows(workspaces: list[str] | None) -> Verdict:
    sections = load_recorded("windows-healthy")
    worker = sections["worker"]
    assert worker.data is not None
    sections["worker"] = dataclasses.replace(worker, data={**worker.data, "workspaces": workspaces})
    return judge("HRW-G05", "workspaces", HostFacts("w", "windows", sections), SETTINGS)


def test_one_workspace_passes_on_linux() -> None:
    verdict = on_linux(LinuxHost())
    assert verdict.outcome == "passed", verdict
    assert verdict.seen == f"1 workspace folder(s) under /var/opt/microsoft/omsagent: {WS}"
    assert verdict.sections == ("worker", "processes")


def test_a_second_workspace_folder_fails_on_linux() -> None:
    verdict = on_linux(LinuxHost(other_workspaces=(OTHER,)))
    assert verdict.outcome == "failed"
    assert "2 workspace folder(s)" in verdict.seen and OTHER in verdict.seen
    assert "at most one workspace folder under /var/opt/microsoft/omsagent" in verdict.expected


def test_a_worker_of_another_workspace_fails_on_linux() -> None:
    verdict = on_linux(LinuxHost(other_workspace_managers=(OTHER,)))
    assert verdict.outcome == "failed"
    assert "nxautomation process(es) for another workspace" in verdict.seen
    assert f"rworkspace:{OTHER}" in verdict.seen and "2 workspace" not in verdict.seen


def test_the_own_workspace_in_another_case_is_not_another_workspace() -> None:
    verdict = on_linux(LinuxHost(other_workspace_managers=(WS.upper(),)))
    assert verdict.outcome == "passed", verdict


def test_unlisted_workspaces_are_an_error_never_a_pass() -> None:
    host = LinuxHost()
    output = host.facts_output()
    start = output.index(f"{host.boundary} BEGIN workspaces")
    end = output.index(f"{host.boundary} END workspaces\n") + len(
        f"{host.boundary} END workspaces\n"
    )
    sections = linux.parse_facts(
        Out(output[:start] + output[end:]), ProbeParams(), host.window(), boundary=host.boundary
    )
    verdict = judge("HRW-G05", "workspaces", HostFacts("h", "linux", sections), SETTINGS)
    assert verdict.outcome == "error" and "could not be listed" in verdict.seen


@pytest.mark.parametrize(
    ("workspaces", "outcome"),
    [([WS], "passed"), ([], "passed"), ([WS, OTHER], "failed"), (None, "error")],
)
def test_windows_cloud_workspaces(workspaces: list[str] | None, outcome: str) -> None:
    verdict = on_windows(workspaces)
    assert verdict.outcome == outcome, verdict
    assert verdict.sections in (("worker",), ())
    if outcome == "failed":
        assert "2 cloud workspace(s) in the Microsoft Monitoring Agent" in verdict.seen


def test_no_workspace_at_all_passes_and_says_so() -> None:
    assert on_windows([]).seen == (
        "no cloud workspace(s) in the Microsoft Monitoring Agent (agent not onboarded)"
    )
