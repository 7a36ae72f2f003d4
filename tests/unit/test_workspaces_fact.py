"""The ``workspaces`` field of the worker section: the workspaces the agent reports to.

Linux: the folders of 32+ characters under /var/opt/microsoft/omsagent; Windows: the MMA's
cloud workspaces (``AgentConfigManager.MgmtSvcCfg`` ``GetCloudWorkspaces()``).
"""

from __future__ import annotations

from hrw_preflight.facts.linux import probe as linux
from hrw_preflight.facts.params import ProbeParams
from hrw_preflight.facts.windows.probe import parse_output
from tests.linux_samples import WS, LinuxHost, Out
from tests.windows_recorded import RECORDED_BOUNDARY, recorded_output, recorded_timing

OTHER = "0b5a9f7e-3c1d-4e2f-8a6b-9c0d1e2f3a4b"


def linux_worker(host: LinuxHost) -> dict[str, object] | None:
    sections = linux.parse_facts(
        Out(host.facts_output()), ProbeParams(), host.window(), boundary=host.boundary
    )
    return sections["worker"].data


def test_linux_lists_the_workspace_folders() -> None:
    assert (linux_worker(LinuxHost()) or {})["workspaces"] == [WS]
    both = linux_worker(LinuxHost(other_workspaces=(OTHER,))) or {}
    assert both["workspaces"] == sorted([WS, OTHER])


def test_linux_folders_that_could_not_be_listed_are_none_not_empty() -> None:
    host = LinuxHost()
    output = host.facts_output()
    start = output.index(f"{host.boundary} BEGIN workspaces")
    end = output.index(f"{host.boundary} END workspaces\n") + len(
        f"{host.boundary} END workspaces\n"
    )
    sections = linux.parse_facts(
        Out(output[:start] + output[end:]), ProbeParams(), host.window(), boundary=host.boundary
    )
    worker = sections["worker"]
    assert worker.data is not None and worker.data["workspaces"] is None
    assert "workspace folders under /var/opt/microsoft/omsagent: could not be listed" in worker.raw


def _windows_worker(stdout: bytes) -> dict[str, object] | None:
    _, stderr, rc = recorded_output("windows-healthy")
    sections = parse_output(
        stdout, stderr, rc, recorded_timing("windows-healthy"), boundary=RECORDED_BOUNDARY
    )
    return sections["worker"].data


def test_windows_reads_the_mma_cloud_workspaces() -> None:
    stdout = recorded_output("windows-healthy")[0]
    worker = _windows_worker(stdout) or {}
    assert worker["workspaces"] == [worker["workspace_id"]]
    text = stdout.decode("utf-8")
    own = str(worker["workspace_id"])
    two = text.replace(f'"{own}"\r\n', f'"{own}",\r\n                       "{OTHER}"\r\n', 1)
    assert two != text
    assert (_windows_worker(two.encode("utf-8")) or {})["workspaces"] == sorted([own, OTHER])
