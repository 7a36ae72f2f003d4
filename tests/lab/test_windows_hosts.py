"""Each Windows lab host answers WinRM on 5985/5986 with a certificate from the WinRM CA."""

from __future__ import annotations

import json
import socket
import ssl
import stat
from typing import Any

import winrm

from lab.fleet import Host
from lab.paths import LabPaths


def test_winrm_ports_open(windows_host: Host) -> None:
    for port in (5985, 5986):
        with socket.create_connection((windows_host.address, port), timeout=5):
            pass


def test_https_certificate_verifies_against_winrm_ca(
    lab_paths: LabPaths, windows_host: Host
) -> None:
    context = ssl.create_default_context(cafile=str(lab_paths.winrm_ca))
    with (
        socket.create_connection((windows_host.address, 5986), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=windows_host.address) as tls,
    ):
        cert = tls.getpeercert()
    assert cert is not None
    assert ("IP Address", windows_host.address) in cert["subjectAltName"]


def test_pywinrm_round_trip(
    lab_state: dict[str, Any], lab_paths: LabPaths, windows_host: Host
) -> None:
    session = winrm.Session(
        f"https://{windows_host.address}:5986/wsman",
        auth=("hrwadmin", lab_state["winrm_password"]),
        transport="ntlm",
        server_cert_validation="validate",
        ca_trust_path=str(lab_paths.winrm_ca),
    )
    result = session.run_cmd("hostname")
    assert result.status_code == 0
    assert result.std_out.decode().strip().lower() == windows_host.name.lower()


def test_emulator_config_follows_profile(lab_paths: LabPaths, windows_host: Host) -> None:
    path = lab_paths.host_dir(windows_host.name) / "winrm.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    config = json.loads(path.read_text(encoding="utf-8"))
    assert config["profile"]["name"] == windows_host.profile.name
    assert config["workspace_id"] == windows_host.workspace_id
    intercepted = windows_host.profile["network"] == "intercepted"
    assert (config["proxy"] is not None) == intercepted
    for event in config["profile"]["events"]:
        assert "{workspace_id}" not in event["message"]
