"""Our own rules for the hybrid workers, run beside the catalogue's checks.

Run with the suite: pytest tests_infra docs/examples --ansible-inventory=... --hosts=ansible://all
Each test runs once per host, through the suite's own connection to it.
"""

import pytest


def test_hosts_file_belongs_to_root(host):
    """Linux: /etc/hosts exists and only root may change it."""
    if host.system_info.type == "windows":
        pytest.skip("a Linux rule")
    hosts = host.file("/etc/hosts")
    assert hosts.exists and hosts.user == "root"
    assert not hosts.mode & 0o022, f"/etc/hosts is writable by others: {oct(hosts.mode)}"


def test_worker_account_exists(host):
    """Linux: the account the worker runs under exists."""
    if host.system_info.type == "windows":
        pytest.skip("a Linux rule")
    assert host.user("nxautomation").exists


def test_machine_answers_with_its_name(host):
    """Windows: the WinRM shell runs commands and the machine reports a name."""
    if host.system_info.type != "windows":
        pytest.skip("a Windows rule")
    result = host.run("hostname")
    assert result.rc == 0 and result.stdout.strip()
