"""The controller never runs inventory text in a shell: ssh is executed with an argument
vector, ``ansible_ssh_common_args`` split once; what cannot be passed safely stops the run
with one line."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from hrw_preflight.hosts.connections import ConnectOptions, open_host
from hrw_preflight.hosts.errors import ConfigError
from hrw_preflight.hosts.selection import parse_hosts_option
from hrw_preflight.hosts.targets import HostDefaults, Target, split_ssh_args

pytest_plugins = ["pytester"]


def inventory(tmp_path: Path, common_args: str, host: str = "127.0.0.1") -> Path:
    path = tmp_path / "inv.yml"
    path.write_text(
        "all:\n  hosts:\n    web1:\n"
        f"      ansible_host: '{host}'\n      ansible_connection: ssh\n"
        "      ansible_user: root\n"
        f"      ansible_ssh_common_args: {json.dumps(common_args)}\n"
    )
    return path


def fake_ssh(tmp_path: Path) -> Path:
    """An ``ssh`` on the PATH that records its arguments, one per line, and succeeds."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    ssh = bindir / "ssh"
    ssh.write_text(
        '#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > "$HRW_ARGV_LOG"\necho out\n'
    )
    ssh.chmod(ssh.stat().st_mode | stat.S_IXUSR)
    return bindir


def test_command_substitution_in_common_args_never_runs_on_the_controller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    planted = tmp_path / "PWNED"
    monkeypatch.setenv("PATH", f"{fake_ssh(tmp_path)}:{os.environ['PATH']}")
    log = tmp_path / "argv.log"
    monkeypatch.setenv("HRW_ARGV_LOG", str(log))
    args = f'-o "ServerAliveInterval=$(touch {planted})" -o "ProxyJump=`touch {planted}`"'
    [target] = parse_hosts_option(
        ["ansible://all"], [str(inventory(tmp_path, args))], HostDefaults()
    )
    host = open_host(target, ConnectOptions(command_timeout_s=10))
    result = host.run("echo %s", "probe")
    assert result.rc == 0 and result.stdout == "out\n"
    assert not planted.exists(), "inventory text ran in a shell on the controller"
    argv = log.read_text().splitlines()
    assert f"ServerAliveInterval=$(touch {planted})" in argv  # passed verbatim, as one word
    assert f"ProxyJump=`touch {planted}`" in argv
    assert argv[-3:] == ["--", "127.0.0.1", "echo probe"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("-o 'User=x", "cannot be split (No closing quotation): fix the quoting"),
        ("-o BatchMode=yes evil.example", "ssh argument 'evil.example' is not an option"),
        ("-o BatchMode=yes -- x", "ssh argument '--' is not an option"),
        ("-o", "ssh option -o needs a value"),
        ("-f", "ssh option -f is not allowed here"),
        ("-O exit", "ssh option -O is not allowed here"),
        (
            "-oLocalCommand=touch /tmp/x -oPermitLocalCommand=yes",
            "ssh option LocalCommand runs commands on the controller",
        ),
    ],
)
def test_what_cannot_be_passed_safely_is_one_line(args: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"^host 'web1': ansible_ssh_common_args: ") as info:
        Target("web1", "linux", "ssh", "10.0.0.5", ssh_extra_args=args)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_the_lab_style_args_split_into_words() -> None:
    text = "-o UserKnownHostsFile=/x/known_hosts -o StrictHostKeyChecking=yes -4 -p2222 -vv"
    assert split_ssh_args(text, "x") == [
        "-o",
        "UserKnownHostsFile=/x/known_hosts",
        "-o",
        "StrictHostKeyChecking=yes",
        "-4",
        "-p2222",
        "-vv",
    ]


def test_an_address_that_ssh_would_read_as_an_option_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="starts with '-', which ssh would read as an option"):
        parse_hosts_option(
            ["ansible://all"],
            [str(inventory(tmp_path, "", host="-oProxyCommand=touch /tmp/x"))],
            HostDefaults(),
        )
