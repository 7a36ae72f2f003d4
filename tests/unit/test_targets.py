"""Tests for the Target model, host specs and the --hosts mix."""

from __future__ import annotations

import dataclasses
import os
import pickle
from pathlib import Path

import pytest
import winrm.transport
from testinfra.backend import parse_hostspec

from hrw_preflight.hosts.errors import ConfigError
from hrw_preflight.hosts.hostspec import targets_from_hostspecs
from hrw_preflight.hosts.selection import parse_hosts_option
from hrw_preflight.hosts.targets import (
    HostDefaults,
    Secret,
    Target,
    winrm_password_env_names,
    winrm_password_from_env,
)

LAB = str(Path(__file__).resolve().parent.parent / "data" / "inventories" / "lab" / "lab.yml")
NO_DEFAULTS = HostDefaults()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the caller's WinRM password variables out of these tests."""
    for name in [n for n in os.environ if n.startswith("HRW_WINRM_PASSWORD")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HRW_TEST_LAB_PASSWORD", "Lab-Pass-42")


def one(spec: str, defaults: HostDefaults = NO_DEFAULTS) -> Target:
    (target,) = targets_from_hostspecs([spec], defaults)
    return target


def test_secret_never_prints() -> None:
    secret = Secret("Pw-123")
    assert (repr(secret), str(secret), f"{secret}") == ("***", "***", "***")
    assert secret.reveal() == "Pw-123"
    assert secret == Secret("Pw-123") and secret != Secret("other") and secret != "Pw-123"
    assert len({secret, Secret("Pw-123")}) == 1


def test_ssh_spec() -> None:
    target = one("ssh://ops@10.0.0.5")
    assert (target.name, target.platform, target.connection, target.address, target.user) == (
        "10.0.0.5",
        "linux",
        "ssh",
        "10.0.0.5",
        "ops",
    )
    assert target.port is None and target.password is None
    assert target.source == "--hosts ssh://ops@10.0.0.5"


def test_paramiko_spec_with_port_and_options() -> None:
    target = one("paramiko://root@worker2:2222?sudo=true&ssh_config=~/cfg&timeout=7")
    assert (target.name, target.connection, target.port, target.sudo, target.timeout) == (
        "worker2",
        "paramiko",
        2222,
        True,
        7,
    )
    assert target.ssh_config == str(Path("~/cfg").expanduser())


def test_bare_host_is_paramiko_like_testinfra() -> None:
    target = one("worker3")
    assert (target.name, target.connection) == ("worker3", "paramiko")


def test_local_spec() -> None:
    target = one("local://?sudo=true")
    assert (target.name, target.connection, target.address, target.sudo) == (
        "local",
        "local",
        "localhost",
        True,
    )
    assert target.hostspec() == "local://?sudo=true"


def test_ipv6_spec() -> None:
    target = one("ssh://ops@[fe80::1]:2200")
    assert (target.address, target.port) == ("fe80::1", 2200)
    assert target.hostspec() == "ssh://ops@[fe80::1]:2200"


def test_winrm_spec_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HRW_WINRM_PASSWORD", "Env-Pw")
    target = one("winrm://svc@win1")
    assert (target.platform, target.port, target.winrm_scheme, target.winrm_transport) == (
        "windows",
        5986,
        "https",
        "ntlm",
    )
    assert target.winrm_cert_validation == "validate"
    assert target.password == Secret("Env-Pw")
    assert target.weakened() == []


def test_winrm_spec_weakening_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HRW_WINRM_PASSWORD_WIN1", "Host-Pw")
    target = one("winrm://svc@win1?no_ssl=true&no_verify_ssl=true")
    assert (target.winrm_scheme, target.port, target.winrm_cert_validation) == (
        "http",
        5985,
        "ignore",
    )
    assert target.password == Secret("Host-Pw")
    assert target.weakened() == [
        "WinRM over plain HTTP (the server is not authenticated)",
        "WinRM certificate validation disabled",
    ]
    assert target.winrm_endpoint() == "http://win1:5985/wsman"


def test_inline_password_is_used_but_never_shown() -> None:
    target = one("winrm://svc:p%40ss-W0rd@win1:5986")
    assert target.password is not None and target.password.reveal() == "p@ss-W0rd"
    shown = repr(target) + target.source + target.hostspec() + str(target.testinfra_kwargs())
    assert "p@ss" not in shown and "p%40ss" not in shown
    assert target.source == "--hosts winrm://svc:***@win1:5986"


def test_inline_password_beats_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HRW_WINRM_PASSWORD", "Env-Pw")
    assert one("winrm://svc:Inline@win1").password == Secret("Inline")


def test_kerberos_needs_no_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(winrm.transport, "HAVE_KERBEROS", True)
    target = one("winrm://svc@win1?transport=kerberos&ca_trust_path=/ca.pem")
    assert (target.winrm_transport, target.password, target.winrm_ca_trust_path) == (
        "kerberos",
        None,
        "/ca.pem",
    )


def test_defaults_apply_unless_the_spec_overrides() -> None:
    defaults = HostDefaults(ssh_config="/cfg", ssh_identity_file="/id", sudo=True)
    target = one("ssh://ops@h", defaults)
    assert (target.ssh_config, target.identity_file, target.sudo) == ("/cfg", "/id", True)
    target = one("ssh://ops@h?sudo=false&ssh_identity_file=/other", defaults)
    assert (target.identity_file, target.sudo) == ("/other", False)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("docker://c1", "unknown scheme 'docker'"),
        ("ssh://ops@h:99999", "bad port '99999'"),
        ("ssh://ops@h:abc", "bad port 'abc'"),
        ("ssh://", "the host is empty"),
        ("ssh://ops@", "the host is empty"),
        ("ssh://fe80::1", "put an IPv6 address in brackets"),
        ("ssh://[fe80::1", "unclosed IPv6 bracket"),
        ("ssh://h?no_ssl=true", "option 'no_ssl' does not apply to ssh://"),
        ("winrm://svc:pw@h?sudo=true", "option 'sudo' does not apply to winrm://"),
        ("ssh://h?sudo=perhaps", "sudo='perhaps': use true or false"),
        ("ssh://h?timeout=0", "timeout='0'"),
        ("local://somewhere", "local:// takes no host"),
        ("winrm://svc:pw@h?transport=plaintext", "transport 'plaintext' is not supported"),
        ("winrm://svc:pw@h?no_ssl=true&transport=basic", "basic authentication over plain HTTP"),
        ("winrm://win1", "no WinRM user"),
        (
            "winrm://svc@win1",
            "no WinRM password: set HRW_WINRM_PASSWORD_WIN1 or HRW_WINRM_PASSWORD",
        ),
    ],
)
def test_bad_specs_give_one_line(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        one(spec)
    assert "\n" not in str(caught.value)


def test_error_message_hides_inline_password() -> None:
    with pytest.raises(ConfigError) as caught:
        one("winrm://svc:Hidden-Pw@win1:0")
    assert "Hidden-Pw" not in str(caught.value)
    assert "svc:***@win1:0" in str(caught.value)


@pytest.mark.parametrize(
    "spec",
    [
        "ssh://ops@10.0.0.5",
        "paramiko://root@worker2:2222?sudo=true&timeout=5",
        "ssh://ops@h?ssh_config=/etc/cfg&ssh_identity_file=/k/id_ed25519&sudo_user=bob",
        "local://",
    ],
)
def test_hostspec_round_trips_through_testinfra(spec: str) -> None:
    target = one(spec)
    host, options = parse_hostspec(target.hostspec())
    assert options["connection"] == target.connection
    if target.connection != "local":
        assert host == f"{target.user}@{target.address}" + (
            f":{target.port}" if target.port else ""
        )
    assert options.get("sudo", False) == target.sudo
    assert options.get("ssh_config") == target.ssh_config
    assert options.get("ssh_identity_file") == target.identity_file
    assert options.get("sudo_user") == target.sudo_user
    assert one(target.hostspec()) == target.__class__(
        **{**dataclasses.asdict(target), "source": f"--hosts {target.hostspec()}"}
    )


def test_testinfra_kwargs_carry_ssh_extra_args() -> None:
    target = Target(
        name="h",
        platform="linux",
        connection="ssh",
        address="h",
        ssh_extra_args="-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        identity_file="/id",
    )
    assert target.testinfra_kwargs() == {
        "sudo": False,
        "ssh_identity_file": "/id",
        "ssh_extra_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
    }
    assert target.weakened() == [
        "SSH host key checking relaxed (StrictHostKeyChecking)",
        "SSH known hosts discarded (UserKnownHostsFile=/dev/null)",
    ]


def test_target_validation() -> None:
    with pytest.raises(ConfigError, match="Windows hosts need winrm"):
        Target(name="w", platform="windows", connection="ssh", address="w")
    with pytest.raises(ConfigError, match="port 0 is out of range"):
        Target(name="h", platform="linux", connection="ssh", address="h", port=0)


def test_target_pickles_for_xdist_workers() -> None:
    target = one("winrm://svc:Pw-9@win1")
    assert pickle.loads(pickle.dumps(target)) == target


def test_password_env_names() -> None:
    assert winrm_password_env_names("win-01.corp") == [
        "HRW_WINRM_PASSWORD_WIN_01_CORP",
        "HRW_WINRM_PASSWORD",
    ]
    env = {"HRW_WINRM_PASSWORD_WIN_01_CORP": "", "HRW_WINRM_PASSWORD": "general"}
    assert winrm_password_from_env("win-01.corp", env) == Secret("general")
    assert winrm_password_from_env("win-01.corp", {}) is None


def test_hosts_option_mixes_inventory_and_specs() -> None:
    targets = parse_hosts_option(
        ["ansible://linux:&prod,ssh://ops@10.0.0.5", "ansible://windows"], [LAB], NO_DEFAULTS
    )
    assert [t.name for t in targets] == ["linux-healthy", "10.0.0.5", "windows-healthy"]
    assert targets[0].source == f"inventory {LAB} (pattern 'linux:&prod')"


def test_hosts_option_inventory_in_the_entry() -> None:
    (target,) = parse_hosts_option(
        [f"ansible://linux-healthy?ansible_inventory={LAB}"], [], NO_DEFAULTS
    )
    assert target.address == "10.213.1.10"


def test_hosts_option_empty_pattern_means_all() -> None:
    assert len(parse_hosts_option(["ansible://"], [LAB], NO_DEFAULTS)) == 3


def test_hosts_option_ansible_needs_an_inventory() -> None:
    with pytest.raises(ConfigError, match="needs an inventory: pass --ansible-inventory"):
        parse_hosts_option(["ansible://all"], [], NO_DEFAULTS)


def test_hosts_option_rejects_unknown_ansible_option() -> None:
    with pytest.raises(ConfigError, match="unknown option 'force_ansible'"):
        parse_hosts_option(["ansible://all?force_ansible=true"], [LAB], NO_DEFAULTS)


def test_hosts_option_duplicate_names() -> None:
    with pytest.raises(ConfigError, match="host 'linux-healthy' is given twice"):
        parse_hosts_option(["ansible://linux", "ansible://prod"], [LAB], NO_DEFAULTS)
    with pytest.raises(ConfigError, match="host 'h' is given twice"):
        parse_hosts_option(["ssh://a@h", "paramiko://b@h"], [], NO_DEFAULTS)


def test_weakened_summary_groups_hosts_per_option() -> None:
    from hrw_preflight.hosts.targets import weakened_summary

    targets = [
        Target(
            name=f"h{i}",
            platform="linux",
            connection="local",
            address="localhost",
            overrides={"hrw_trusted_ca_file": "/x/cas.pem"},
        )
        for i in range(10)
    ]
    (line,) = weakened_summary(targets, shown=3)
    assert line.startswith("extra trusted CAs from /x/cas.pem")
    assert line.endswith("(on 10 hosts: h0, h1, h2 and 7 more)")


@pytest.mark.parametrize("transport", ["kerberos", "credssp"])
def test_a_transport_whose_support_is_missing_stops_the_run_in_one_line(
    transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(winrm.transport, f"HAVE_{transport.upper()}", False)
    monkeypatch.setenv("HRW_WINRM_PASSWORD", "x")
    with pytest.raises(ConfigError, match=rf"pip install -e '\.\[{transport}\]'"):
        one(f"winrm://svc@win1?transport={transport}")
