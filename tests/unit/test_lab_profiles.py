"""The lab's profile loader: real profiles resolve, bad ones stop with one clear line."""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path

import pytest

from hrw_preflight.verdicts.catalogue import load_catalogue
from lab.fleet import (
    count_from_env,
    expand_fleet,
    host_address,
    without_from_env,
    workspace_id,
)
from lab.profiles import PROFILES_DIR, ProfileError, catalogue_ids, load_profiles
from lab.readme_table import README, update_readme


@pytest.fixture()
def profile_dir(tmp_path: Path) -> Path:
    """Return a copy of the real profiles directory that a test may break."""
    target = tmp_path / "profiles"
    shutil.copytree(PROFILES_DIR, target)
    return target


def _error(directory: Path) -> str:
    with pytest.raises(ProfileError) as info:
        load_profiles(directory)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_real_profiles_load_in_fleet_order_and_name_catalogue_scenarios() -> None:
    profiles = load_profiles()
    ordered = [p.name for p in profiles.ordered()]
    assert sorted(ordered) == sorted(p.stem for p in PROFILES_DIR.glob("[!_]*.yaml"))
    assert ordered[:2] == ["linux-healthy", "linux-healthy-no-um"]  # the fleet list comes first
    known = {s.id for s in load_catalogue().scenarios}
    for profile in profiles.ordered():
        assert set(profile["expect_failing"]) <= known, profile.name
    assert catalogue_ids() == tuple(s.id for s in load_catalogue().scenarios)


def test_a_profile_may_name_any_catalogue_scenario_and_nothing_else(profile_dir: Path) -> None:
    # Before: ids had to match HRW-[GLW]NN, so a profile could not expect an image check.
    path = profile_dir / "linux-underspec.yaml"
    path.write_text(path.read_text().replace("[HRW-G02, HRW-R01]", "[HRW-G02, HRW-I01]"))
    assert load_profiles(profile_dir).profiles["linux-underspec"]["expect_failing"] == [
        "HRW-G02",
        "HRW-I01",
    ]
    path.write_text(path.read_text().replace("HRW-I01", "HRW-X99"))
    assert "expect_failing='HRW-X99' is invalid; use scenario ids of the catalogue" in _error(
        profile_dir
    )


def test_readme_profile_table_is_generated_from_the_profiles(tmp_path: Path) -> None:
    assert update_readme(check=True), "README.md's profile table is stale: run python -m lab docs"
    stale = tmp_path / "README.md"
    stale.write_text(README.read_text().replace("| linux-underspec |", "| linux-old |"))
    assert not update_readme(stale, check=True)
    assert not update_readme(stale, check=False)
    assert stale.read_text() == README.read_text()


def test_defaults_fill_unset_keys() -> None:
    profiles = load_profiles().profiles
    healthy, stopped = profiles["linux-healthy"], profiles["linux-agent-stopped"]
    assert stopped["agent_running"] is False
    assert stopped["cpus"] == healthy["cpus"] == 2
    assert stopped["memory_mb"] == 8192
    assert profiles["windows-healthy"]["healthservice"]["status"] == "Running"
    assert "events" not in healthy.values


def test_fault_profiles_cross_the_suite_thresholds() -> None:
    profiles = load_profiles().profiles
    for name in ("linux-underspec", "windows-underspec"):
        assert profiles[name]["cpus"] < 2 or profiles[name]["memory_mb"] < 4096
    pressure = profiles["linux-resource-pressure"]
    assert pressure["load"] / pressure["cpus"] >= 0.9
    for name in ("linux-resource-pressure", "windows-resource-pressure"):
        p = profiles[name]
        assert p["memory_available_mb"] < 0.1 * p["memory_mb"]
    healthy = profiles["linux-healthy"]
    assert healthy["load"] / healthy["cpus"] < 0.9


def test_unknown_key_is_one_clear_line(profile_dir: Path) -> None:
    path = profile_dir / "linux-healthy.yaml"
    path.write_text(path.read_text() + "cpu_count: 4\n")
    message = _error(profile_dir)
    assert "linux-healthy.yaml" in message
    assert "unknown key 'cpu_count'" in message


def test_windows_only_key_on_linux_is_named(profile_dir: Path) -> None:
    path = profile_dir / "linux-healthy.yaml"
    path.write_text(path.read_text() + "events: []\n")
    assert "windows-only" in _error(profile_dir)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("cpus: 3", "cpus=3 is invalid; use 1 or 2"),
        ("network: vpn", "network='vpn' is invalid; use direct | intercepted | blocked"),
        ("expect_failing: [L01]", "expect_failing='L01' is invalid"),
        ("agent_running: 'no'", "agent_running='no' is invalid; use true or false"),
        ("memory_available_mb: 99999", "exceeds memory_mb=8192"),
        ("worker_user: alice", "worker_user='alice' is invalid"),
    ],
)
def test_bad_value_is_one_clear_line(profile_dir: Path, line: str, expected: str) -> None:
    path = profile_dir / "linux-healthy.yaml"
    path.write_text(path.read_text() + line + "\n")
    assert expected in _error(profile_dir)


def test_bad_event_is_named(profile_dir: Path) -> None:
    path = profile_dir / "windows-healthy.yaml"
    path.write_text(path.read_text().replace("level: 4", "level: 9"))
    assert "events[0].level=9 is invalid" in _error(profile_dir)


def test_name_must_match_file(profile_dir: Path) -> None:
    path = profile_dir / "linux-healthy.yaml"
    path.write_text(path.read_text().replace("name: linux-healthy", "name: other"))
    assert "must equal the file name 'linux-healthy'" in _error(profile_dir)


def test_broken_yaml_names_the_line(profile_dir: Path) -> None:
    (profile_dir / "linux-healthy.yaml").write_text("name: [unclosed\n")
    assert "is not valid YAML" in _error(profile_dir)


def test_fleet_copies_get_suffixes_and_addresses() -> None:
    profiles = load_profiles()
    size = len(profiles.ordered())  # derived: a new profile must not break this test
    hosts = expand_fleet(profiles, 2 * size + 2)
    names = [h.name for h in hosts]
    assert names[0] == "linux-healthy"
    assert names[size] == "linux-healthy-2"
    assert names[2 * size] == "linux-healthy-3"
    assert len(set(names)) == 2 * size + 2
    assert hosts[10].name == "windows-healthy"
    assert hosts[10].address == "10.213.1.20"
    assert host_address(200) == "10.213.2.10"
    assert len({h.address for h in expand_fleet(profiles, 200)}) == 200


def test_workspace_id_is_uuid5_of_host_name() -> None:
    expected = str(uuid.uuid5(uuid.NAMESPACE_DNS, "linux-healthy.hrw-lab"))
    assert workspace_id("linux-healthy") == expected


def test_event_messages_get_the_hosts_workspace() -> None:
    host = next(h for h in expand_fleet(load_profiles()) if h.name == "windows-event-4502")
    message = host.resolved_profile()["events"][0]["message"]
    assert f"{host.workspace_id}.oms.opinsights.azure.com" in message
    assert "Microsoft.EnterpriseManagement.HealthService.AzureAutomation.HybridAgent" in message


def test_lab_hosts_env_is_checked() -> None:
    assert count_from_env({}) is None
    assert count_from_env({"LAB_HOSTS": "200"}) == 200
    with pytest.raises(ProfileError, match="not a number"):
        count_from_env({"LAB_HOSTS": "many"})
    with pytest.raises(ProfileError, match="out of range"):
        expand_fleet(load_profiles(), 0)


def test_state_moves_out_of_directories_the_hosts_replace() -> None:
    from pathlib import Path

    from lab.paths import RELOCATED_STATE, default_state

    assert default_state(Path("/work/repo")) == Path("/work/repo/.lab")
    assert default_state(Path("/tmp/clone")) == RELOCATED_STATE
    assert default_state(Path("/root/src/hrw")) == RELOCATED_STATE


def test_lab_without_leaves_out_the_matching_profiles() -> None:
    profiles = load_profiles()
    without = without_from_env({"LAB_WITHOUT": " *443-blocked* , linux-healthy"})
    assert without == ["*443-blocked*", "linux-healthy"]
    fleet = expand_fleet(profiles, 120, without)
    names = {h.profile.name for h in fleet}
    assert len(fleet) == 120 and names
    assert not any("443-blocked" in n for n in names) and "linux-healthy" not in names
    assert names == {p.name for p in profiles.ordered()} - {
        p.name for p in profiles.ordered() if "443-blocked" in p.name or p.name == "linux-healthy"
    }
    assert without_from_env({}) == []


@pytest.mark.parametrize(
    ("globs", "message"),
    [(["no-such-*"], "'no-such-*' matches no profile"), (["*"], "leaves no profile")],
)
def test_lab_without_refuses_what_cannot_be_meant(globs: list[str], message: str) -> None:
    with pytest.raises(ProfileError, match=re.escape(message)):
        expand_fleet(load_profiles(), None, globs)
