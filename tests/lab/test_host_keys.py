"""paramiko:// verifies host keys: the lab's known_hosts (named by an ssh config's
UserKnownHostsFile) admits a host, a changed key or an unknown one stops it with the reason,
and --accept-unknown-host-keys admits an unknown key while the report says host keys were
not verified. (OpenSSH's ssh:// has checked keys all along: StrictHostKeyChecking=yes.)"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from hrw_preflight.facts.collector import probe_host
from hrw_preflight.facts.params import ProbeParams
from hrw_preflight.hosts.connections import ConnectOptions, close_host, open_host
from hrw_preflight.hosts.selection import parse_hosts_option
from hrw_preflight.hosts.targets import HostDefaults
from tests.lab.suite_run import host_vars, run_suite

pytestmark = pytest.mark.lab


def lab_known_hosts() -> Path:
    args = str(host_vars("linux-healthy")["ansible_ssh_common_args"])
    found = re.search(r"UserKnownHostsFile=(\S+)", args)
    assert found is not None, args
    return Path(found.group(1))


def ssh_config(tmp_path: Path, known_hosts: Path) -> Path:
    config = tmp_path / "ssh_config"
    config.write_text(f"Host *\n  UserKnownHostsFile {known_hosts}\n")
    return config


def spec(name: str = "linux-healthy") -> str:
    hv: dict[str, Any] = host_vars(name)
    return (
        f"paramiko://{hv['ansible_user']}@{hv['ansible_host']}"
        f"?ssh_identity_file={hv['ansible_ssh_private_key_file']}"
    )


def changed_known_hosts(tmp_path: Path) -> Path:
    """Return a known_hosts where linux-healthy's address carries another host's key."""
    lines = lab_known_hosts().read_text().splitlines()
    mine = str(host_vars("linux-healthy")["ansible_host"])
    other = str(host_vars("linux-healthy-no-um")["ansible_host"])
    by_address = {line.split()[0]: line.split(None, 1)[1] for line in lines if line.strip()}
    by_address[mine] = by_address[other]
    path = tmp_path / "known_hosts.changed"
    path.write_text("".join(f"{a} {k}\n" for a, k in by_address.items()))
    return path


def probe(tmp_path: Path, known_hosts: Path, accept: bool = False) -> Any:
    [target] = parse_hosts_option(
        [spec()], [], HostDefaults(ssh_config=str(ssh_config(tmp_path, known_hosts)))
    )
    options = ConnectOptions(
        connect_timeout_s=5, command_timeout_s=30, accept_unknown_host_keys=accept
    )
    host = open_host(target, options)
    try:
        return probe_host(target, host, ProbeParams(connect_timeout_s=2))
    finally:
        close_host(host)


def test_a_known_key_is_admitted(tmp_path: Path) -> None:
    facts = probe(tmp_path, lab_known_hosts())
    assert facts.connect_error is None and facts.commands == 2
    assert all(s.error is None for s in facts.sections.values()), facts.sections


def test_a_changed_key_is_refused_even_when_unknown_keys_are_accepted(tmp_path: Path) -> None:
    for accept in (False, True):
        facts = probe(tmp_path, changed_known_hosts(tmp_path), accept=accept)
        assert facts.connect_error is not None and "has CHANGED" in facts.connect_error
        assert facts.commands <= 1 and not facts.sections


def test_an_unknown_key_is_refused_unless_accepted(tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts.empty"
    empty.write_text("")
    refused = probe(tmp_path, empty)
    assert refused.connect_error is not None
    assert "is not in known_hosts" in refused.connect_error
    assert "--accept-unknown-host-keys" in refused.connect_error
    accepted = probe(tmp_path, empty, accept=True)
    assert accepted.connect_error is None and accepted.commands == 2


def test_the_suite_reports_a_changed_key_as_an_error_and_says_when_keys_were_not_verified(
    tmp_path: Path,
) -> None:
    config = ssh_config(tmp_path, changed_known_hosts(tmp_path))
    run = run_suite(
        [f"--hosts={spec()}", f"--ssh-config={config}", "-k", "HRW-L02"], tmp_path / "r1"
    )
    [outcome] = next(iter(run.outcomes.values()))
    assert outcome.kind == "error" and "has CHANGED" in outcome.message, run.output[-2000:]
    empty = tmp_path / "known_hosts.empty"
    empty.write_text("")
    config = ssh_config(tmp_path, empty)
    run = run_suite(
        [
            f"--hosts={spec()}",
            f"--ssh-config={config}",
            "-k",
            "HRW-L02",
            "--accept-unknown-host-keys",
        ],
        tmp_path / "r2",
    )
    [outcome] = next(iter(run.outcomes.values()))
    assert outcome.kind == "passed", run.output[-2000:]
    folder = tmp_path / "r2" / "latest"
    assert "host keys not verified" in (folder / "report.html").read_text()
    record = json.loads((folder / "evidence.json").read_text())
    assert any("host keys not verified" in line for line in record["weakened"]["run"])
