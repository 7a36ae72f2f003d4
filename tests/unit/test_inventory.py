"""Tests for targets read from Ansible inventories."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import winrm.transport

from hrw_preflight.hosts.errors import ConfigError
from hrw_preflight.hosts.inventory import target_from_hostvars, targets_from_inventory
from hrw_preflight.hosts.targets import HostDefaults, Secret, Target

DATA = Path(__file__).resolve().parent.parent / "data" / "inventories"
LAB = str(DATA / "lab" / "lab.yml")
INI = str(DATA / "ini")
DYNAMIC = str(DATA / "dynamic" / "inventory.py")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the caller's WinRM password variables out of these tests."""
    monkeypatch.setenv("HRW_TEST_LAB_PASSWORD", "Lab-Pass-42")
    for name in [n for n in os.environ if n.startswith("HRW_WINRM_PASSWORD")]:
        monkeypatch.delenv(name)


def by_name(targets: list[Target]) -> dict[str, Target]:
    return {t.name: t for t in targets}


def test_lab_inventory_maps_linux_and_windows_hosts() -> None:
    targets = by_name(targets_from_inventory([LAB], "all"))
    assert sorted(targets) == ["linux-agent-stopped", "linux-healthy", "windows-healthy"]

    linux = targets["linux-healthy"]
    assert (linux.platform, linux.connection, linux.address, linux.user) == (
        "linux",
        "ssh",
        "10.213.1.10",
        "root",
    )
    assert linux.identity_file == "/abs/.lab/ssh/id_ed25519"
    assert linux.ssh_extra_args == (
        "-o UserKnownHostsFile=/abs/.lab/ssh/known_hosts -o StrictHostKeyChecking=yes"
    )
    assert linux.overrides == {
        "hrw_trusted_ca_file": "/abs/.lab/pki/trusted-cas.pem",
        "hrw_lab_profile": "linux-healthy",
    }
    assert linux.password is None
    assert linux.source == f"inventory {LAB} (pattern 'all')"

    windows = targets["windows-healthy"]
    assert (windows.platform, windows.connection, windows.port) == ("windows", "winrm", 5986)
    assert (windows.winrm_scheme, windows.winrm_transport, windows.winrm_cert_validation) == (
        "https",
        "ntlm",
        "validate",
    )
    assert windows.winrm_ca_trust_path == "/abs/.lab/pki/winrm-ca.pem"
    # The Jinja lookup resolved, and the value is a Secret that never prints.
    assert windows.password == Secret("Lab-Pass-42")
    assert "Lab-Pass-42" not in repr(windows)
    assert windows.winrm_endpoint() == "https://10.213.1.20:5986/wsman"


@pytest.mark.parametrize(
    ("pattern", "names"),
    [
        ("linux", ["linux-agent-stopped", "linux-healthy"]),
        ("windows-healthy", ["windows-healthy"]),
        ("linux:&prod", ["linux-healthy"]),
        ("all:!windows", ["linux-agent-stopped", "linux-healthy"]),
    ],
)
def test_ansible_patterns_select_hosts(pattern: str, names: list[str]) -> None:
    assert sorted(t.name for t in targets_from_inventory([LAB], pattern)) == names


@pytest.fixture()
def kerberos_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """pywinrm's Kerberos support, as if the `.[kerberos]` extra were installed."""
    monkeypatch.setattr(winrm.transport, "HAVE_KERBEROS", True)


@pytest.mark.usefixtures("kerberos_installed")
def test_ini_inventory_with_group_and_host_vars() -> None:
    targets = by_name(targets_from_inventory([INI], "all"))
    web1 = targets["web1"]
    assert (web1.address, web1.port, web1.user, web1.sudo) == ("192.0.2.10", 2222, "deploy", True)
    assert web1.ssh_extra_args == "-o StrictHostKeyChecking=no"
    assert "SSH host key checking relaxed (StrictHostKeyChecking)" in web1.weakened()
    # host_vars beat group_vars, and a template in a group var sees the host's value.
    assert web1.overrides["hrw_workspace_id"] == "99999999-8888-7777-6666-555555555555"
    assert web1.overrides["hrw_endpoints"] == {
        "agentsvc": "99999999-8888-7777-6666-555555555555.agentsvc.azure-automation.net",
        "jrds": "eus-jobruntimedata-prod-su1.azure-automation.net",
    }
    assert web1.overrides["hrw_proxy"] == "http://px:proxy-secret@10.0.0.3:3128"

    web2 = targets["web2"]
    assert (web2.connection, web2.user, web2.address) == ("paramiko", "ops", "web2")

    win1 = targets["win1"]
    # Comma list: the first transport; http without a port: 5985; kerberos needs no password.
    assert (win1.winrm_transport, win1.winrm_scheme, win1.port) == ("kerberos", "http", 5985)
    assert win1.password is None
    assert win1.weakened() == ["WinRM over plain HTTP (the server is not authenticated)"]


def test_dynamic_inventory_script() -> None:
    targets = by_name(targets_from_inventory([DYNAMIC], "workers"))
    assert targets["dyn1"].address == "198.51.100.1"
    assert targets["dyn1"].user == "svc"
    assert targets["dyn2"].connection == "local"


def test_defaults_fill_what_the_inventory_leaves_unset() -> None:
    defaults = HostDefaults(ssh_config="/cfg", ssh_identity_file="/id", sudo=True)
    targets = by_name(targets_from_inventory([LAB], "linux", defaults=defaults))
    assert targets["linux-healthy"].identity_file == "/abs/.lab/ssh/id_ed25519"
    assert targets["linux-healthy"].ssh_config == "/cfg"
    assert targets["linux-healthy"].sudo is True


def test_missing_inventory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"inventory '.*nope.yml' does not exist"):
        targets_from_inventory([str(tmp_path / "nope.yml")], "all")


def test_unparsable_inventory_is_one_line_and_quiet(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("all: [\n")
    with pytest.raises(ConfigError, match=r"could not be parsed") as caught:
        targets_from_inventory([str(bad)], "all")
    assert "\n" not in str(caught.value)
    assert "WARNING" not in capfd.readouterr().err


def test_pattern_matching_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match="host pattern 'nosuch' matches no host"):
        targets_from_inventory([LAB], "nosuch")
    assert "WARNING" not in capfd.readouterr().err


def test_no_inventory_given() -> None:
    with pytest.raises(ConfigError, match="no inventory given"):
        targets_from_inventory([], "all")


def write_inventory(tmp_path: Path, host_vars: str) -> str:
    path = tmp_path / "hosts.yml"
    body = textwrap.indent(textwrap.dedent(host_vars), " " * 8)
    path.write_text(f"all:\n  hosts:\n    h1:\n{body}\n")
    return str(path)


@pytest.mark.parametrize(
    ("host_vars", "message"),
    [
        ("ansible_connection: psrp", "psrp is not supported: set ansible_connection: winrm"),
        ("ansible_connection: docker", "ansible_connection 'docker' is not supported"),
        ("ansible_port: 70000", "ansible_port='70000' is not a port"),
        ("ansible_port: twenty", "ansible_port='twenty' is not a port"),
        ("ansible_become: maybe", "ansible_become='maybe' is not a boolean"),
        ('ansible_user: "{{ undefined_thing }}"', "cannot resolve ansible_user"),
        ("hrw_endpoints: [a, b]", "hrw_endpoints must map a role"),
        ("ansible_shell_type: powershell", "is Windows but ansible_connection is ssh"),
        (
            "ansible_connection: winrm\nansible_user: u\nansible_password: p\n"
            "ansible_winrm_transport: basic\nansible_winrm_scheme: http",
            "basic authentication over plain HTTP",
        ),
        (
            "ansible_connection: winrm\nansible_user: u\nansible_password: p\n"
            "ansible_winrm_transport: certificate",
            "ansible_winrm_transport 'certificate' is not supported",
        ),
        (
            "ansible_connection: winrm\nansible_user: u",
            "no WinRM password: set HRW_WINRM_PASSWORD_H1",
        ),
        ("ansible_connection: winrm\nansible_password: p", "no WinRM user"),
    ],
)
def test_bad_host_variables(tmp_path: Path, host_vars: str, message: str) -> None:
    path = write_inventory(tmp_path, host_vars)
    with pytest.raises(ConfigError, match=message) as caught:
        targets_from_inventory([path], "all")
    assert "\n" not in str(caught.value)


def winrm_vars(**extra: Any) -> dict[str, Any]:
    return {"ansible_connection": "winrm", "ansible_user": "svc", **extra}


def test_password_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HRW_WINRM_PASSWORD", "general")
    target = target_from_hostvars("win-01.corp", winrm_vars(), "t", HostDefaults())
    assert target.password == Secret("general")

    monkeypatch.setenv("HRW_WINRM_PASSWORD_WIN_01_CORP", "per-host")
    target = target_from_hostvars("win-01.corp", winrm_vars(), "t", HostDefaults())
    assert target.password == Secret("per-host")

    target = target_from_hostvars(
        "win-01.corp", winrm_vars(ansible_password="inventory"), "t", HostDefaults()
    )
    assert target.password == Secret("inventory")

    target = target_from_hostvars(
        "win-01.corp",
        winrm_vars(ansible_password="generic", ansible_winrm_password="specific"),
        "t",
        HostDefaults(),
    )
    assert target.password == Secret("specific")


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, ("https", 5986)),
        ({"ansible_port": 5985}, ("http", 5985)),
        ({"ansible_winrm_scheme": "http"}, ("http", 5985)),
        ({"ansible_winrm_scheme": "https", "ansible_port": "15986"}, ("https", 15986)),
    ],
)
def test_winrm_scheme_and_port_defaults(extra: dict[str, Any], expected: tuple[str, int]) -> None:
    target = target_from_hostvars(
        "w", winrm_vars(ansible_password="p", **extra), "t", HostDefaults()
    )
    assert (target.winrm_scheme, target.port) == expected


def test_windows_by_os_family_needs_winrm() -> None:
    target = target_from_hostvars(
        "w",
        winrm_vars(ansible_password="p", ansible_os_family="Windows"),
        "t",
        HostDefaults(),
    )
    assert target.platform == "windows"
    with pytest.raises(ConfigError, match="is Windows"):
        target_from_hostvars("w", {"ansible_os_family": "Windows"}, "t", HostDefaults())


def test_cert_validation_ignore_is_weakened(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(winrm.transport, "HAVE_CREDSSP", True)
    target = target_from_hostvars(
        "w",
        winrm_vars(
            ansible_password="p",
            ansible_winrm_server_cert_validation="ignore",
            ansible_winrm_transport=["credssp", "ntlm"],
        ),
        "t",
        HostDefaults(),
    )
    assert target.winrm_transport == "credssp"
    assert target.weakened() == ["WinRM certificate validation disabled"]


def test_hostspec_only_run_never_imports_ansible() -> None:
    code = textwrap.dedent(
        """
        import sys
        from hrw_preflight.hosts.targets import HostDefaults
        from hrw_preflight.hosts.selection import parse_hosts_option
        import hrw_preflight.hosts.inventory
        parse_hosts_option(["ssh://ops@10.0.0.5", "local://"], [], HostDefaults())
        print(sorted(m for m in sys.modules if m == "ansible" or m.startswith("ansible.")))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def vaulted_inventory(tmp_path: Path, secret: str, vault_password: str) -> str:
    """Write an inventory whose WinRM password is vault-encrypted; return its path."""
    from ansible.parsing.vault import VaultLib, VaultSecret

    vault = VaultLib([("default", VaultSecret(vault_password.encode()))])
    encrypted = vault.encrypt(secret).decode()
    path = tmp_path / "vaulted.yml"
    path.write_text(
        "all:\n  hosts:\n    w1:\n      ansible_connection: winrm\n      ansible_user: svc\n"
        "      ansible_password: !vault |\n" + textwrap.indent(encrypted, " " * 8) + "\n"
    )
    return str(path)


def run_isolated(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (Ansible's vault context is per process)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_vaulted_password_with_password_file(tmp_path: Path) -> None:
    inventory = vaulted_inventory(tmp_path, "Vaulted-Pw-1", "vault-key")
    password_file = tmp_path / "vault-pass"
    password_file.write_text("vault-key\n")
    code = f"""
        from hrw_preflight.hosts.inventory import targets_from_inventory
        (target,) = targets_from_inventory([{inventory!r}], "all")
        print(target.password.reveal() == "Vaulted-Pw-1", target)
    """
    env = {"PATH": "/usr/bin:/bin", "ANSIBLE_VAULT_PASSWORD_FILE": str(password_file)}
    result = run_isolated(code, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("True ")
    assert "Vaulted-Pw-1" not in result.stdout + result.stderr


def test_vaulted_password_without_vault_password_says_what_to_set(tmp_path: Path) -> None:
    inventory = vaulted_inventory(tmp_path, "Vaulted-Pw-1", "vault-key")
    with pytest.raises(ConfigError, match="set ANSIBLE_VAULT_PASSWORD_FILE"):
        targets_from_inventory([inventory], "all")


def test_ansible_configuration_supplies_unset_user_and_key(tmp_path: Path) -> None:
    path = write_inventory(tmp_path, "ansible_host: 192.0.2.1")
    code = f"""
        from hrw_preflight.hosts.inventory import targets_from_inventory
        (target,) = targets_from_inventory([{path!r}], "all")
        print(target.user, target.identity_file, target.port, target.sudo)
    """
    env = {
        "PATH": "/usr/bin:/bin",
        "ANSIBLE_REMOTE_USER": "cfg-user",
        "ANSIBLE_PRIVATE_KEY_FILE": "/keys/id_cfg",
        "ANSIBLE_REMOTE_PORT": "2022",
        "ANSIBLE_BECOME": "true",
    }
    result = run_isolated(code, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["cfg-user", "/keys/id_cfg", "2022", "True"]


def test_ssh_password_variables_do_not_leak_across_connections() -> None:
    linux = target_from_hostvars("l", {"ansible_ssh_pass": "ssh-pw"}, "t", HostDefaults())
    assert linux.password == Secret("ssh-pw")
    with pytest.raises(ConfigError, match="no WinRM password"):
        target_from_hostvars("w", winrm_vars(ansible_ssh_pass="ssh-pw"), "t", HostDefaults())


def test_inventory_host_names_are_plain_strings(tmp_path: Path) -> None:
    """pytest-xdist pickles test ids and JUnit properties: no Ansible tagged types may leak."""
    path = tmp_path / "inv.yml"
    path.write_text("all:\n  hosts:\n    web1:\n      ansible_host: 192.0.2.10\n")
    (target,) = targets_from_inventory([str(path)], "all")
    assert type(target.name) is str and type(target.address) is str


def test_kerberos_without_its_support_installed_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Before: accepted without a password, then every check said "host unreachable".
    monkeypatch.setattr(winrm.transport, "HAVE_KERBEROS", False)
    with pytest.raises(ConfigError) as info:
        targets_from_inventory([INI], "all")
    assert str(info.value) == (
        "host 'win1': WinRM transport kerberos needs pywinrm's kerberos support, which is not "
        "installed: run .venv/bin/pip install -e '.[kerberos]'"
    )
