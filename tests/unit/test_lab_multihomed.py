"""The lab's multi-homing knob (``other_workspaces``): a Linux host gets the other workspace's
folders and a worker manager for it, a Windows host's MMA lists it among its workspaces."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lab.agent_tree import build_agent_tree, host_users, process_plan
from lab.fleet import Host, expand_fleet
from lab.profiles import PROFILES_DIR, ProfileError, load_profiles
from lab.winrm_emulator.config import HostConfig
from lab.winrm_emulator.ps_sections import RunState, worker

OTHER = "5e0c1a7b-2d4f-4c6e-9a8b-1f2e3d4c5b6a"


def fleet_with(tmp_path: Path, name: str, platform: str, extra: str) -> dict[str, Host]:
    """Return the fleet of the real profiles plus one profile ``name`` made of ``extra``."""
    directory = tmp_path / "profiles"
    shutil.copytree(PROFILES_DIR, directory)
    (directory / f"{name}.yaml").write_text(
        f"name: {name}\nplatform: {platform}\ndescription: test\n{extra}"
    )
    return {h.name: h for h in expand_fleet(load_profiles(directory))}


def test_default_is_no_other_workspace() -> None:
    profiles = load_profiles().profiles
    assert profiles["linux-healthy"]["other_workspaces"] == []
    assert profiles["windows-healthy"]["other_workspaces"] == []


def test_linux_host_gets_the_folders_and_a_manager_for_the_other_workspace(
    tmp_path: Path,
) -> None:
    host = fleet_with(tmp_path, "mh", "linux", f"other_workspaces: [{OTHER}]\n")["mh"]
    managers = [p.argv for p in process_plan(host) if p.argv[1].endswith("/main.py")]
    assert [m[3] for m in managers] == [f"rworkspace:{host.workspace_id}", f"rworkspace:{OTHER}"]
    fs = tmp_path / "fs"
    build_agent_tree(host, fs, host_users(102), None)
    folders = sorted(
        p.name for p in (fs / "var/opt/microsoft/omsagent").iterdir() if len(p.name) >= 32
    )
    assert folders == sorted([host.workspace_id, OTHER])
    admin = (fs / f"etc/opt/microsoft/omsagent/{OTHER}/conf/omsadmin.conf").read_text()
    assert admin.startswith(f"WORKSPACE_ID={OTHER}\n")


def test_windows_mma_lists_the_other_workspace(tmp_path: Path) -> None:
    host = fleet_with(tmp_path, "wmh", "windows", f"other_workspaces: [{OTHER}]\n")["wmh"]
    config = HostConfig(
        name=host.name,
        address="127.0.0.1",
        http_port=0,
        https_port=0,
        tls_cert="",
        tls_key="",
        username="u",
        password="p",
        workspace_id=host.workspace_id,
        endpoints={"agentsvc": "a.invalid", "jrds": "j.invalid", "oms": "o.invalid"},
        resolve={},
        proxy=None,
        profile=host.resolved_profile(),
    )
    lines = worker(RunState(config, {"boundary": "B"}, datetime.now(UTC)))
    start = lines.index("B PART agent") + 1
    end = lines.index("B PART workers")
    agent = json.loads("\n".join(lines[start:end]))
    assert agent["Workspaces"] == [host.workspace_id, OTHER]


def test_a_workspace_that_is_not_a_guid_is_refused(tmp_path: Path) -> None:
    with pytest.raises(
        ProfileError, match=r"other_workspaces=.* is invalid; use a list of workspace ids"
    ):
        fleet_with(tmp_path, "bad", "linux", "other_workspaces: [not-a-guid]\n")
