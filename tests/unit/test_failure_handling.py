"""Failure handling without the lab: output decoding, command timeouts, WinRM waits, and the
lab's extra (failure-mode) profiles."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from hrw_preflight.facts.collector import FactsCache
from hrw_preflight.facts.linux import probe as linux
from hrw_preflight.facts.model import HostFacts
from hrw_preflight.facts.params import ProbeParams
from hrw_preflight.hosts.connections import (
    BoundedSshBackend,
    ConnectOptions,
    HostUnreachable,
    open_host,
)
from hrw_preflight.hosts.connections import _winrm_host as winrm_host
from hrw_preflight.hosts.selection import parse_hosts_option
from hrw_preflight.hosts.targets import HostDefaults
from lab.profiles import PROFILES_DIR, load_profiles
from lab.sidecar import EXTRA_DIR, extra_hosts, fleet_copies
from tests.linux_samples import BOUNDARY, LinuxHost


@dataclass
class BytesOut:
    """A finished command whose output is bytes, as testinfra's CommandResult keeps it."""

    stdout_bytes: bytes
    rc: int = 0
    stderr_bytes: bytes = b""

    @property
    def stdout(self) -> str:
        raise AssertionError("the probe must decode stdout_bytes itself")

    @property
    def stderr(self) -> str:
        raise AssertionError("the probe must decode stderr_bytes itself")


def test_non_utf8_bytes_make_only_their_section_an_error() -> None:
    host = LinuxHost(log_lines=["The specified class does not exist.. caf\udce9"])
    data = host.facts_output().encode("utf-8", "surrogateescape")
    sections = linux.parse_facts(BytesOut(data), ProbeParams(), host.window(), boundary=BOUNDARY)
    log = sections["omsconfig_log"]
    assert log.data is None
    assert log.error is not None and "not valid UTF-8 (byte 0xe9)" in log.error
    assert "caf\ufffd" in log.raw and "\udce9" not in log.raw
    assert sections["processes"].error is None and sections["worker"].error is None


def test_utf8_output_is_read_as_text() -> None:
    host = LinuxHost(log_lines=["The specified class does not exist.. (café)"])
    sections = linux.parse_facts(
        BytesOut(host.facts_output().encode()), ProbeParams(), host.window(), boundary=BOUNDARY
    )
    data = sections["omsconfig_log"].data
    assert data is not None and data["matches"] == host.log_lines


def test_failed_command_with_garbage_bytes_is_an_error_for_every_section() -> None:
    result = BytesOut(b"\xff\xfe partial", rc=1, stderr_bytes=b"sh: \xff: not found")
    sections = linux.parse_facts(result, ProbeParams(), boundary=BOUNDARY)
    assert sections and all(s.data is None for s in sections.values())
    assert all("exited 1" in str(s.error) for s in sections.values())
    assert all("\udcff" not in s.raw for s in sections.values())


def test_command_timeout_kills_the_command_and_says_why() -> None:
    backend = BoundedSshBackend("root@192.0.2.1", command_timeout_s=1, extra_argv=[])
    marker = f"60.{os.getpid()}"  # a sleep duration no other process uses
    started = time.monotonic()
    with pytest.raises(HostUnreachable, match="no answer within 1 s"):
        # run_argv runs its command locally: here a shell that forks a long sleep.
        backend.run_argv(["sh", "-c", f"sh -c 'sleep {marker}' & wait"])
    assert time.monotonic() - started < 8
    time.sleep(0.2)
    survivors = [
        p for p in Path("/proc").iterdir()
        if p.name.isdigit() and marker.encode() in _cmdline(p)
    ]  # fmt: skip
    assert not survivors, "the timed-out command's process group was not killed"


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


def test_ssh_backend_never_asks_the_host_for_its_encoding() -> None:
    backend = BoundedSshBackend("root@192.0.2.1", command_timeout_s=1, extra_argv=[])
    assert backend.encoding == "utf-8"  # no remote python3 call to find it out


@pytest.mark.parametrize("command_timeout", [4, 10, 120])
def test_winrm_waits_stay_within_the_command_timeout(command_timeout: int) -> None:
    [target] = parse_hosts_option(["winrm://svc:pw@win1:5985?no_ssl=true"], [], HostDefaults())
    options = ConnectOptions(connect_timeout_s=3, command_timeout_s=command_timeout)
    host = winrm_host(target, options)
    settings = host.backend.settings
    assert settings.operation_timeout_s < settings.read_timeout_s <= command_timeout
    assert settings.command_timeout_s == command_timeout
    assert settings.connect_timeout_s == 3


def test_a_failed_connection_is_remembered_not_retried() -> None:
    [target] = parse_hosts_option(["ssh://root@192.0.2.1"], [], HostDefaults())
    attempts: list[str] = []
    cache = FactsCache([target], ConnectOptions(), lambda t: ProbeParams())

    def gather(name: str) -> HostFacts:
        attempts.append(name)
        return HostFacts(host=name, platform=target.platform, connect_error="refused")

    cache._gather = gather  # type: ignore[method-assign]
    first = cache.get(target.name)
    for _ in range(20):
        assert cache.get(target.name) is first
    assert attempts == [target.name]
    assert first.connect_error == "refused"


def test_extra_profiles_load_but_stay_out_of_the_fleet() -> None:
    fleet = load_profiles()
    extra = load_profiles(EXTRA_DIR, defaults_dir=PROFILES_DIR)
    assert len(fleet.ordered()) == len(list(PROFILES_DIR.glob("[!_]*.yaml")))
    assert not set(extra.profiles) & set(fleet.profiles)
    assert extra.profiles["linux-ssh-hang"]["ssh_session"] == "hang"
    assert extra.profiles["linux-log-unreadable"]["omsconfig_log_mode"] == 0o600
    assert extra.profiles["windows-winrm-hang"]["winrm_hang_after_connect"] is True
    assert fleet.profiles["linux-healthy"]["ssh_session"] == "normal"


def test_sidecar_addresses_never_meet_a_fleet_address() -> None:
    hosts = extra_hosts(sorted(load_profiles(EXTRA_DIR, defaults_dir=PROFILES_DIR).profiles))
    copies = fleet_copies(90)
    addresses = [h.address for h in [*hosts, *copies]]
    assert len(set(addresses)) == len(addresses)
    assert all(a.startswith("10.213.200.") for a in addresses)
    assert len({h.name for h in copies}) == 90


def test_two_inventory_entries_for_one_machine_get_their_own_ssh_master(tmp_path: Path) -> None:
    inventory = tmp_path / "inv.yml"
    inventory.write_text(
        "all:\n  hosts:\n"
        "    web-a:\n      ansible_host: 192.0.2.9\n      ansible_user: root\n"
        "    web-b:\n      ansible_host: 192.0.2.9\n      ansible_user: root\n"
    )
    targets = parse_hosts_option(["ansible://all"], [str(inventory)], HostDefaults())
    paths = {open_host(t, ConnectOptions()).backend.controlpath for t in targets}
    assert len(targets) == 2 and len(paths) == 2  # closing one never cuts the other's probe


def test_the_ssh_socket_folder_goes_with_the_process(tmp_path: Path) -> None:
    script = (
        "from hrw_preflight.hosts.connections import ConnectOptions, open_host\n"
        "from hrw_preflight.hosts.targets import HostDefaults\n"
        "from hrw_preflight.hosts.selection import parse_hosts_option\n"
        "[t] = parse_hosts_option(['ssh://root@192.0.2.9'], [], HostDefaults())\n"
        "host = open_host(t, ConnectOptions())\n"
        "import os; print(os.path.dirname(host.backend.controlpath))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert out.startswith("/") and "hrw-ssh-" in out
    assert not os.path.exists(out)  # created for the host, removed at exit (empty)


def test_a_removed_control_folder_is_made_again_for_the_next_connection() -> None:
    # A run's cache removes the folder when it closes; a later connection in the same process
    # (the next test of a pytest worker, a second run in one process) must get a new one, not
    # "SSH control-socket folder ... is gone".
    from hrw_preflight.hosts import connections

    first = connections._control_dir()
    connections.remove_control_dir()
    assert not os.path.exists(first)
    second = connections._control_dir()
    assert os.path.isdir(second) and second != first
    connections.remove_control_dir()
